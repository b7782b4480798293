#include "ops/listener_config.h"

#include "server/net/listener.h"
#include "server/proxy/cidr.h"

namespace popgate::ops {
namespace {

bool parse_bool(std::string_view text, bool* out) {
  if (text == "true" || text == "yes" || text == "1") {
    *out = true;
  } else if (text == "false" || text == "no" || text == "0") {
    *out = false;
  } else {
    return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

const std::vector<std::string_view>& listener_keys() {
  static const std::vector<std::string_view> keys = {
      "name", "address", "protocol", "tls", "starttls", "allow_cleartext_login", "apop",
      "proxy_protocol", "trusted_proxies", "proxy_tls_is_secure"};
  return keys;
}

bool set_listener_key(ListenerConfig& l, std::string_view key, std::string_view value, std::string* error) {
  auto boolean = [&](bool* field) {
    if (parse_bool(value, field)) return true;
    *error = "listener key '" + std::string(key) + "' must be true or false, got '" + std::string(value) + "'";
    return false;
  };
  if (key == "name") {
    l.name = std::string(value);
  } else if (key == "address") {
    l.address = std::string(value);
  } else if (key == "protocol") {
    if (value == "pop3") {
      l.protocol = ListenerProtocol::kPop3;
    } else if (value == "lmtp") {
      l.protocol = ListenerProtocol::kLmtp;
    } else {
      *error = "listener key 'protocol' must be pop3 or lmtp, got '" + std::string(value) + "'";
      return false;
    }
  } else if (key == "tls") {
    if (value == "none") {
      l.tls = ListenerTls::kNone;
    } else if (value == "implicit") {
      l.tls = ListenerTls::kImplicit;
    } else {
      *error = "listener key 'tls' must be none or implicit, got '" + std::string(value) + "'";
      return false;
    }
  } else if (key == "starttls") {
    return boolean(&l.starttls);
  } else if (key == "allow_cleartext_login") {
    return boolean(&l.allow_cleartext_login);
  } else if (key == "apop") {
    return boolean(&l.apop);
  } else if (key == "proxy_protocol") {
    return boolean(&l.proxy_protocol);
  } else if (key == "proxy_tls_is_secure") {
    return boolean(&l.proxy_tls_is_secure);
  } else if (key == "trusted_proxies") {
    l.trusted_proxies = std::string(value);
  } else {
    *error = "unknown listener key '" + std::string(key) + "'";
    return false;
  }
  return true;
}

bool parse_listener_spec(std::string_view spec, ListenerConfig* out, std::string* error) {
  *out = ListenerConfig{};
  while (!spec.empty()) {
    const size_t comma = spec.find(',');
    std::string_view item = trim(spec.substr(0, comma));
    spec = comma == std::string_view::npos ? std::string_view{} : spec.substr(comma + 1);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      *error = "listener spec item '" + std::string(item) + "' is not key=value";
      return false;
    }
    if (!set_listener_key(*out, trim(item.substr(0, eq)), trim(item.substr(eq + 1)), error)) return false;
  }
  return true;
}

bool validate_listener(const ListenerConfig& l, bool tls_configured, std::string* error) {
  const std::string where = "listener " + (l.name.empty() ? std::string("(unnamed)") : l.name) + ": ";
  if (l.name.empty()) {
    *error = where + "name is required";
    return false;
  }
  net::Endpoint endpoint;
  std::string why;
  if (!net::parse_endpoint(l.address, &endpoint, &why)) {
    *error = where + "address: " + why;
    return false;
  }
  if (l.protocol == ListenerProtocol::kLmtp && (l.tls != ListenerTls::kNone || l.proxy_protocol)) {
    *error = where + "protocol = lmtp takes neither tls nor proxy_protocol (serve it on a private network)";
    return false;
  }
  if (l.tls == ListenerTls::kImplicit && !tls_configured) {
    *error = where + "tls = implicit needs certificates in [tls] (tls.certificates)";
    return false;
  }
  if (l.proxy_protocol) {
    if (l.trusted_proxies.empty()) {
      *error = where + "proxy_protocol needs trusted_proxies (the load balancers' addresses)";
      return false;
    }
    if (!proxy::CidrSet::parse(l.trusted_proxies, &why)) {
      *error = where + "trusted_proxies: " + why;
      return false;
    }
  }
  return true;
}

}  // namespace popgate::ops
