// Configuration: defaults, TOML, environment and flags in that order of
// precedence, and an error naming the key for every kind of mistake.
#include "ops/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

namespace popgate::ops {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const std::string& name : env_) unsetenv(name.c_str());
  }
  void env(const std::string& name, const std::string& value) {
    setenv(name.c_str(), value.c_str(), 1);
    env_.push_back(name);
  }
  std::string file(const std::string& text) {
    // ctest runs each test in its own process, in parallel: the pid keeps
    // their files apart.
    const std::string path = ::testing::TempDir() + "/popgate_config_test_" +
                             std::to_string(getpid()) + "_" + std::to_string(counter_++) + ".toml";
    std::ofstream(path) << text;
    return path;
  }
  std::optional<Config> load(std::vector<std::string> args) {
    args.insert(args.begin(), "popgate");
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    error.clear();
    exit_now = false;
    return load_config(static_cast<int>(argv.size()), argv.data(), &error, &exit_now);
  }
  void expect_error(std::vector<std::string> args, const std::string& fragment) {
    EXPECT_FALSE(load(std::move(args)).has_value());
    EXPECT_FALSE(exit_now);
    EXPECT_NE(error.find(fragment), std::string::npos) << "error was: " << error;
  }

  std::string error;
  bool exit_now = false;
  std::vector<std::string> env_;
  int counter_ = 0;
};

TEST_F(ConfigTest, DefaultsNeedOnlyADsn) {
  const auto c = load({"--dsn", "host=x"});
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->dsn, "host=x");
  EXPECT_EQ(c->idle_timeout_ms, 600'000u);
  EXPECT_EQ(c->listener.address, "127.0.0.1:1110");
  EXPECT_EQ(c->lock_lease_ms, 30'000u);
}

TEST_F(ConfigTest, DsnIsRequired) { expect_error({}, "database.dsn is required"); }

TEST_F(ConfigTest, FileThenEnvironmentThenFlags) {
  const std::string path = file(
      "[database]\ndsn = \"host=file\"\n[session]\nidle_timeout_ms = 700000\n"
      "auth_failure_delay_ms = 5\n[log]\nlevel = \"warn\"\n");
  auto c = load({"--config", path});
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->dsn, "host=file");
  EXPECT_EQ(c->idle_timeout_ms, 700'000u);
  EXPECT_EQ(c->log_level, "warn");

  env("POPGATE_SESSION_IDLE_TIMEOUT_MS", "800000");
  env("POPGATE_DATABASE_DSN", "host=env");
  c = load({"--config", path});
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->idle_timeout_ms, 800'000u);
  EXPECT_EQ(c->dsn, "host=env");
  EXPECT_EQ(c->auth_failure_delay_ms, 5u);  // untouched by env

  c = load({"--config", path, "--dsn", "host=flag", "--set", "session.idle_timeout_ms=900000"});
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->dsn, "host=flag");
  EXPECT_EQ(c->idle_timeout_ms, 900'000u);
}

TEST_F(ConfigTest, ConfigFileFromEnvironment) {
  env("POPGATE_CONFIG", file("[database]\ndsn = \"host=viaenv\"\n"));
  const auto c = load({});
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->dsn, "host=viaenv");
}

TEST_F(ConfigTest, UnknownKeyIsNamed) {
  expect_error({"--config", file("[session]\nidle_timout_ms = 700000\n")},
               "unknown key 'session.idle_timout_ms'");
}

TEST_F(ConfigTest, SectionMustBeATable) {
  expect_error({"--config", file("session = 3\n")}, "'session' must be a table");
}

TEST_F(ConfigTest, WrongTypesAreNamed) {
  expect_error({"--config", file("[session]\nidle_timeout_ms = \"ten minutes\"\n")},
               "session.idle_timeout_ms must be a non-negative integer");
  expect_error({"--config", file("[listener]\nallow_cleartext_login = 1\n")},
               "listener.allow_cleartext_login must be true or false");
  expect_error({"--config", file("[database]\ndsn = 5\n")}, "database.dsn must be a string");
  expect_error({"--config", file("[session]\nidle_timeout_ms = -1\n")},
               "session.idle_timeout_ms must be a non-negative integer");
}

TEST_F(ConfigTest, SyntaxErrorsGiveFileLineAndColumn) {
  const std::string path = file("[database]\ndsn = \"unterminated\n");
  expect_error({"--config", path}, path + ":2:");
}

TEST_F(ConfigTest, MissingFile) { expect_error({"--config", "/nonexistent/popgate.toml"}, "/nonexistent/popgate.toml"); }

TEST_F(ConfigTest, IdleTimeoutBelowTenMinutesIsRefused) {
  expect_error({"--dsn", "x", "--set", "session.idle_timeout_ms=599999"},
               "session.idle_timeout_ms = 599999 is out of range [600000");
}

TEST_F(ConfigTest, RangesAreChecked) {
  expect_error({"--dsn", "x", "--set", "database.lock_lease_ms=100"}, "database.lock_lease_ms = 100");
  expect_error({"--dsn", "x", "--set", "session.output_buffer_bytes=100"}, "session.output_buffer_bytes");
}

TEST_F(ConfigTest, MetricsAddressIsChecked) {
  expect_error({"--dsn", "x", "--set", "metrics.address=localhost:9110"}, "metrics.address");
  const auto c = load({"--dsn", "x", "--set", "metrics.address=127.0.0.1:0"});
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->metrics_address, "127.0.0.1:0");
}

TEST_F(ConfigTest, ChangedKeysAndWhichOnesReload) {
  const auto a = load({"--dsn", "x"});
  const auto b = load({"--dsn", "x", "--set", "log.level=debug", "--set", "limits.sessions_per_user_max=3",
                       "--set", "session.idle_timeout_ms=900000", "--listener", "name=other,address=127.0.0.1:0"});
  ASSERT_TRUE(a && b);
  const std::vector<std::string> changed = changed_keys(*a, *b);
  EXPECT_EQ(changed, (std::vector<std::string>{"session.idle_timeout_ms", "limits.sessions_per_user_max",
                                               "log.level", "listeners"}));
  EXPECT_TRUE(reloadable("log.level"));
  EXPECT_TRUE(reloadable("limits.sessions_per_user_max"));
  EXPECT_TRUE(reloadable("tls.certificates"));
  EXPECT_FALSE(reloadable("session.idle_timeout_ms"));
  EXPECT_FALSE(reloadable("listeners"));
  EXPECT_FALSE(reloadable("database.dsn"));
  EXPECT_TRUE(changed_keys(*a, *a).empty());
}

TEST_F(ConfigTest, PowersOfTwo) {
  expect_error({"--dsn", "x", "--set", "net.recv_buffers=1000"}, "net.recv_buffers must be a power of two");
  expect_error({"--dsn", "x", "--set", "net.ring_entries=1000"}, "net.ring_entries must be a power of two");
}

TEST_F(ConfigTest, BadEnvironmentValueNamesTheVariable) {
  env("POPGATE_SESSION_IDLE_TIMEOUT_MS", "soon");
  expect_error({"--dsn", "x"}, "environment POPGATE_SESSION_IDLE_TIMEOUT_MS");
  unsetenv("POPGATE_SESSION_IDLE_TIMEOUT_MS");
  env("POPGATE_LISTENER_ALLOW_CLEARTEXT_LOGIN", "maybe");
  expect_error({"--dsn", "x"}, "listener.allow_cleartext_login must be true or false");
}

TEST_F(ConfigTest, BadSetAndFlags) {
  expect_error({"--dsn", "x", "--set", "nosuch.key=1"}, "--set nosuch.key=1");
  expect_error({"--dsn", "x", "--set", "novalue"}, "--set novalue");
  expect_error({"--dsn", "x", "--log-level", "loud"}, "log.level must be debug, info, warn or error");
  expect_error({"--dsn", "x", "--listen", "localhost:110"}, "listener.address");
  expect_error({"--dsn", "x", "--listen", "127.0.0.1:99999"}, "listener.address");
  expect_error({"--dsn", "x", "--bogus"}, "bogus");
}

TEST_F(ConfigTest, HelpVersionKeysAndCheck) {
  EXPECT_FALSE(load({"--help"}));
  EXPECT_TRUE(exit_now);
  EXPECT_NE(error.find("--dsn"), std::string::npos);
  EXPECT_FALSE(load({"--version"}));
  EXPECT_TRUE(exit_now);
  EXPECT_NE(error.find("popgate"), std::string::npos);
  EXPECT_FALSE(load({"--print-keys"}));
  EXPECT_TRUE(exit_now);
  EXPECT_NE(error.find("POPGATE_DATABASE_DSN"), std::string::npos);
  EXPECT_FALSE(load({"--dsn", "x", "--check-config"}));
  EXPECT_TRUE(exit_now);
  EXPECT_EQ(error, "configuration OK");
}

TEST_F(ConfigTest, OneDefaultListenerWithoutListeners) {
  const auto c = load({"--dsn", "x", "--listen", "127.0.0.1:2110"});
  ASSERT_TRUE(c) << error;
  ASSERT_EQ(c->listeners.size(), 1u);
  EXPECT_EQ(c->listeners[0].address, "127.0.0.1:2110");
  EXPECT_EQ(c->listeners[0].tls, ListenerTls::kNone);
}

TEST_F(ConfigTest, ListenersFromTomlEnvironmentAndFlags) {
  const std::string path = file(
      "[database]\ndsn = \"x\"\n[tls]\ncertificates = \"a.pem:a.key\"\n"
      "[[listeners]]\nname = \"pop3\"\naddress = \"0.0.0.0:110\"\nallow_cleartext_login = false\n"
      "[[listeners]]\nname = \"pop3s\"\naddress = \"0.0.0.0:995\"\ntls = \"implicit\"\n"
      "proxy_protocol = true\ntrusted_proxies = \"10.0.0.0/8, ::1\"\n");
  auto c = load({"--config", path});
  ASSERT_TRUE(c) << error;
  ASSERT_EQ(c->listeners.size(), 2u);
  EXPECT_FALSE(c->listeners[0].allow_cleartext_login);
  EXPECT_EQ(c->listeners[1].tls, ListenerTls::kImplicit);
  EXPECT_TRUE(c->listeners[1].proxy_protocol);

  env("POPGATE_LISTENERS", "name=a,address=127.0.0.1:1,apop=true; name=b,address=127.0.0.1:2,starttls=false");
  c = load({"--config", path});
  ASSERT_TRUE(c) << error;
  ASSERT_EQ(c->listeners.size(), 2u);
  EXPECT_EQ(c->listeners[0].name, "a");
  EXPECT_TRUE(c->listeners[0].apop);
  EXPECT_FALSE(c->listeners[1].starttls);

  c = load({"--config", path, "--listener", "name=only,address=127.0.0.1:3,tls=implicit"});
  ASSERT_TRUE(c) << error;
  ASSERT_EQ(c->listeners.size(), 1u);
  EXPECT_EQ(c->listeners[0].name, "only");
}

TEST_F(ConfigTest, ListenerMistakesAreNamed) {
  expect_error({"--dsn", "x", "--listener", "name=s,address=127.0.0.1:995,tls=implicit"},
               "listener s: tls = implicit needs certificates in [tls]");
  expect_error({"--dsn", "x", "--listener", "name=p,address=127.0.0.1:1,proxy_protocol=true"},
               "listener p: proxy_protocol needs trusted_proxies");
  expect_error({"--dsn", "x", "--listener", "name=p,address=127.0.0.1:1,proxy_protocol=true,trusted_proxies=10.0.0.0/33"},
               "listener p: trusted_proxies:");
  expect_error({"--dsn", "x", "--listener", "name=a,address=127.0.0.1:1", "--listener", "name=a,address=127.0.0.1:2"},
               "listener a: the name is used twice");
  expect_error({"--dsn", "x", "--listener", "name=a,address=127.0.0.1:1", "--listener", "name=b,address=127.0.0.1:1"},
               "is also listener a's");
  expect_error({"--dsn", "x", "--listener", "name=a,adress=127.0.0.1:1"}, "unknown listener key 'adress'");
  expect_error({"--dsn", "x", "--listener", "name=a,tls=maybe"}, "listener key 'tls' must be none or implicit");
  expect_error({"--dsn", "x", "--listener", "name=a,address=nowhere"}, "listener a: address:");
  expect_error({"--config", file("[database]\ndsn = \"x\"\n[[listeners]]\nname = 5\n")},
               "listeners.name must be a string or a boolean");
  expect_error({"--config", file("listeners = 3\n[database]\ndsn = \"x\"\n")},
               "listeners must be an array of tables");
}

TEST_F(ConfigTest, AuthAndTlsMistakesAreNamed) {
  expect_error({"--dsn", "x", "--set", "auth.mechanisms=PLAIN CRAM-MD5"}, "auth.mechanisms: unknown method 'CRAM-MD5'");
  expect_error({"--dsn", "x", "--set", "auth.mechanisms= "}, "auth.mechanisms must enable at least one");
  expect_error({"--dsn", "x", "--set", "auth.mechanisms=PLAIN OAUTHBEARER"}, "auth.oauth_jwks_file is empty");
  expect_error({"--dsn", "x", "--set", "tls.certificates=only.pem"}, "tls.certificates: 'only.pem' is not chain.pem:key.pem");
  expect_error({"--dsn", "x", "--set", "session.capa_expire=soon"}, "session.capa_expire must be a number of days or never");
  expect_error({"--dsn", "x", "--set", "limits.failure_delay_max_ms=100"},
               "limits.failure_delay_max_ms must not be below");
}

TEST_F(ConfigTest, EveryKeyHasEnvNameAndHelp) {
  for (const KeyInfo& k : config_keys()) {
    EXPECT_FALSE(k.help.empty()) << k.name;
    EXPECT_EQ(k.env.rfind("POPGATE_", 0), 0u) << k.name;
  }
}

// ---- Several PostgreSQL clusters: [database.clusters.NAME] and [database.tenants]

TEST_F(ConfigTest, ClustersAndTenantMapFromToml) {
  const auto c = load({"--config", file("[database]\ndsn = \"host=a\"\n"
                                        "[database.clusters.eu2]\ndsn = \"host=b\"\n"
                                        "[database.clusters.us_1]\ndsn = \"host=c\"\n"
                                        "[database.tenants]\n\"Example.ORG\" = \"eu2\"\n"
                                        "\"b.example\" = \"default\"\n\"c.example\" = \"us_1\"\n")});
  ASSERT_TRUE(c) << error;
  ASSERT_EQ(c->clusters.size(), 2u);
  EXPECT_EQ(c->clusters[0], (DatabaseCluster{"eu2", "host=b"}));
  EXPECT_EQ(c->clusters[1], (DatabaseCluster{"us_1", "host=c"}));
  // Lowercased and sorted by domain.
  ASSERT_EQ(c->tenant_clusters.size(), 3u);
  EXPECT_EQ(c->tenant_clusters[0], (TenantCluster{"b.example", "default"}));
  EXPECT_EQ(c->tenant_clusters[1], (TenantCluster{"c.example", "us_1"}));
  EXPECT_EQ(c->tenant_clusters[2], (TenantCluster{"example.org", "eu2"}));

  const ClusterSet set = cluster_set(c->dsn, c->clusters, c->tenant_clusters);
  ASSERT_EQ(set.clusters.size(), 3u);
  EXPECT_EQ(set.clusters[0], (DatabaseCluster{"default", "host=a"}));
  EXPECT_EQ(set.routes.cluster_of_domain("example.org"), 1);
  EXPECT_EQ(set.routes.cluster_of_domain("c.example"), 2);
  EXPECT_EQ(set.routes.cluster_of_domain("b.example"), 0);
  EXPECT_EQ(set.routes.cluster_of_domain("unlisted.example"), 0);
  // Logins route like PgClient::lookup_user parses them.
  EXPECT_EQ(set.routes.cluster_of_login("Joe@EXAMPLE.org", ""), 1);
  EXPECT_EQ(set.routes.cluster_of_login("joe", "example.org"), 1);
  EXPECT_EQ(set.routes.cluster_of_login("joe", ""), 0);
  EXPECT_EQ(set.routes.cluster_of_login("\x01@example.org", ""), 0);
}

TEST_F(ConfigTest, NoClustersMeansOneDefaultCluster) {
  const auto c = load({"--dsn", "host=a"});
  ASSERT_TRUE(c) << error;
  EXPECT_TRUE(c->clusters.empty());
  EXPECT_TRUE(c->tenant_clusters.empty());
  const ClusterSet set = cluster_set(c->dsn, c->clusters, c->tenant_clusters);
  ASSERT_EQ(set.clusters.size(), 1u);
  EXPECT_EQ(set.clusters[0].name, "default");
  EXPECT_EQ(set.routes.size(), 0u);
}

TEST_F(ConfigTest, ClustersFromEnvironmentAndFlags) {
  // The file names the cluster; the environment carries its DSN (a
  // Secret), and the tenant map replaces the file's.
  env("POPGATE_DATABASE_CLUSTERS_EU2_DSN", "host=b password=secret");
  env("POPGATE_DATABASE_TENANTS", "x.example=eu2 y.example=default");
  auto c = load({"--config", file("[database]\ndsn = \"host=a\"\n[database.clusters.eu2]\ndsn = \"host=old\"\n"
                                  "[database.tenants]\n\"z.example\" = \"eu2\"\n")});
  ASSERT_TRUE(c) << error;
  ASSERT_EQ(c->clusters.size(), 1u);
  EXPECT_EQ(c->clusters[0].dsn, "host=b password=secret");
  ASSERT_EQ(c->tenant_clusters.size(), 2u);
  EXPECT_EQ(c->tenant_clusters[0], (TenantCluster{"x.example", "eu2"}));

  c = load({"--dsn", "host=a", "--cluster", "us=host=u", "--tenant-cluster", "q.example=us"});
  ASSERT_TRUE(c) << error;
  ASSERT_EQ(c->clusters.size(), 2u);  // eu2 from the environment, us from the flag
  EXPECT_EQ(c->clusters[1], (DatabaseCluster{"us", "host=u"}));
  ASSERT_EQ(c->tenant_clusters.size(), 1u);  // the flag's map replaces the environment's
  EXPECT_EQ(c->tenant_clusters[0], (TenantCluster{"q.example", "us"}));
}

TEST_F(ConfigTest, ClusterMistakesNameTheKey) {
  const std::string base = "[database]\ndsn = \"host=a\"\n";
  expect_error({"--config", file(base + "[database.clusters.eu2]\ndsn = \"host=b\"\n"
                                        "[database.tenants]\n\"example.org\" = \"eu3\"\n")},
               "database.tenants.\"example.org\" = \"eu3\": no cluster of that name (known: default eu2)");
  expect_error({"--config", file(base + "[database.clusters.eu2]\ndsn = \"host=b\"\n"
                                        "[database.tenants]\n\"Example.org\" = \"eu2\"\n"
                                        "\"example.ORG\" = \"default\"\n")},
               "database.tenants.\"example.org\" is listed twice");
  expect_error({"--config", file(base + "[database.tenants]\n\"exa mple.org\" = \"default\"\n")},
               "database.tenants.\"exa mple.org\": not a domain name");
  expect_error({"--config", file(base + "[database.tenants]\n\"example..org\" = \"default\"\n")},
               "database.tenants.\"example..org\": not a domain name");
  expect_error({"--config", file(base + "[database.tenants]\n\"example.org\" = 3\n")},
               "database.tenants.\"example.org\" must be a cluster name");
  expect_error({"--config", file(base + "[database.clusters.eu2]\n")}, "database.clusters.eu2.dsn is required");
  expect_error({"--config", file(base + "[database.clusters.eu2]\ndsn = \"host=a\"\n")},
               "database.clusters.eu2.dsn is database.dsn's");
  expect_error({"--config", file(base + "[database.clusters.x]\ndsn = \"host=b\"\n"
                                        "[database.clusters.y]\ndsn = \"host=b\"\n")},
               "database.clusters.y.dsn is also database.clusters.x.dsn");
  expect_error({"--config", file(base + "[database.clusters.EU2]\ndsn = \"host=b\"\n")},
               "database.clusters.EU2: a cluster name is");
  expect_error({"--config", file(base + "[database.clusters.default]\ndsn = \"host=b\"\n")},
               "database.clusters.default: a cluster name is");
  expect_error({"--config", file(base + "[database.clusters.eu2]\ndsn = \"host=b\"\nport = 5\n")},
               "unknown key 'database.clusters.eu2.port'");
  expect_error({"--dsn", "host=a", "--cluster", "nodsn"}, "--cluster nodsn: expected NAME=DSN");
  expect_error({"--dsn", "host=a", "--tenant-cluster", "example.org"}, "'example.org' is not domain=cluster");
  std::string many = base;
  for (size_t i = 0; i < storage::kClustersMax; ++i) {
    many += "[database.clusters.c" + std::to_string(i) + "]\ndsn = \"host=" + std::to_string(i) + "\"\n";
  }
  expect_error({"--config", file(many)}, "at most 15");
}

TEST_F(ConfigTest, ClusterChangesNeedARestart) {
  const auto a = load({"--dsn", "host=a", "--cluster", "eu2=host=b", "--tenant-cluster", "x.example=eu2"});
  ASSERT_TRUE(a) << error;
  const auto b = load({"--dsn", "host=a", "--cluster", "eu2=host=c", "--tenant-cluster", "x.example=default"});
  ASSERT_TRUE(b) << error;
  EXPECT_EQ(changed_keys(*a, *b), (std::vector<std::string>{"database.clusters", "database.tenants"}));
  EXPECT_FALSE(reloadable("database.clusters"));
  EXPECT_FALSE(reloadable("database.tenants"));
}

TEST(ClusterIds, ScopedIdsKeepClusterAndId) {
  const int64_t id = storage::kScopableIdMax;
  EXPECT_EQ(storage::cluster_of_scoped(storage::scoped_id(15, id)), 15);
  EXPECT_EQ(storage::unscoped_id(storage::scoped_id(15, id)), id);
  EXPECT_EQ(storage::scoped_id(0, 42), 42);
  EXPECT_NE(storage::scoped_id(1, 42), storage::scoped_id(0, 42));
}

TEST_F(ConfigTest, ShippedExampleLoadsAndListsEveryKey) {
  const std::string path = std::string(POPGATE_SOURCE_DIR) + "/deploy/popgate.example.toml";
  const auto c = load({"--config", path});
  ASSERT_TRUE(c) << error;
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const KeyInfo& k : config_keys()) {
    const std::string key = k.name.substr(k.name.find('.') + 1);
    EXPECT_NE(text.find("\n" + key + " ="), std::string::npos) << k.name << " missing from the example";
  }
}

}  // namespace
}  // namespace popgate::ops

namespace popgate::ops {
namespace {

// The README's configuration table must list every key the binary knows.
TEST(ConfigReadme, ListsEveryKey) {
  std::ifstream in(std::string(POPGATE_SOURCE_DIR) + "/README.md");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(text.empty());
  for (const KeyInfo& k : config_keys()) {
    EXPECT_NE(text.find("| `" + k.name + "` |"), std::string::npos) << k.name << " missing from README";
  }
}

}  // namespace
}  // namespace popgate::ops
