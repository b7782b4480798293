// Listener configuration: one entry per socket address popgate serves,
// with its TLS mode, login rules and PROXY protocol trust.
//
// Three ways to give listeners, the later replacing the earlier whole:
// `[[listeners]]` tables in the TOML file, POPGATE_LISTENERS (entries
// separated by ';'), and repeated --listener flags. An entry in the last two
// is a spec string with the same keys as the TOML table:
//   name=pop3s,address=0.0.0.0:995,tls=implicit,proxy_protocol=true,trusted_proxies=10.0.0.0/8 ::1
//   name=lmtp,address=10.0.0.5:24,protocol=lmtp
// (commas separate keys; spaces separate CIDRs). Without any, the single
// [listener] section (default 127.0.0.1:1110) is the one listener.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace popgate::ops {

enum class ListenerTls : uint8_t {
  kNone,      // plain POP3; STLS offered when `starttls` and [tls] is set
  kImplicit,  // TLS from the first byte (RFC 8314; port 995)
};

enum class ListenerProtocol : uint8_t {
  kPop3,
  kLmtp,  // RFC 2033 delivery from an MTA: plain TCP, no TLS, no PROXY, no logins
};

struct ListenerConfig {
  std::string name = "pop3";
  ListenerProtocol protocol = ListenerProtocol::kPop3;
  std::string address = "127.0.0.1:1110";
  ListenerTls tls = ListenerTls::kNone;
  bool starttls = true;               // offer STLS if TLS is configured
  bool allow_cleartext_login = true;  // USER/PASS, PLAIN, LOGIN before TLS
  bool apop = false;                  // offer APOP (plaintext-equivalent secrets)
  bool proxy_protocol = false;        // a PROXY v1/v2 header comes first
  std::string trusted_proxies;        // CIDRs allowed to send it
  bool proxy_tls_is_secure = true;    // a PROXY SSL TLV counts as TLS

  bool operator==(const ListenerConfig&) const = default;
};

// Sets one key from text; false with *error naming the key.
[[nodiscard]] bool set_listener_key(ListenerConfig& l, std::string_view key, std::string_view value,
                                    std::string* error);
// Parses a spec string (see above).
[[nodiscard]] bool parse_listener_spec(std::string_view spec, ListenerConfig* out, std::string* error);
// Checks one listener; `tls_configured` says whether [tls] has
// certificates. Errors start with "listener <name>: ".
[[nodiscard]] bool validate_listener(const ListenerConfig& l, bool tls_configured, std::string* error);
// The keys a [[listeners]] table may have, for errors and docs.
[[nodiscard]] const std::vector<std::string_view>& listener_keys();

}  // namespace popgate::ops
