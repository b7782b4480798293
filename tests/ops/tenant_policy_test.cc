#include "ops/admin/tenant_policy.h"

#include <gtest/gtest.h>

namespace popgate::admin {
namespace {

TEST(TenantPolicy, CanonicalMechanisms) {
  EXPECT_EQ(canonical_mechanisms("all"), "");
  EXPECT_EQ(canonical_mechanisms("ALL"), "");
  EXPECT_EQ(canonical_mechanisms("plain"), "PLAIN");
  EXPECT_EQ(canonical_mechanisms(" plain,,Scram-Sha-256\tplain "), "PLAIN SCRAM-SHA-256");
  EXPECT_EQ(canonical_mechanisms("USER PLAIN LOGIN SCRAM-SHA-256 OAUTHBEARER XOAUTH2 APOP"),
            "USER PLAIN LOGIN SCRAM-SHA-256 OAUTHBEARER XOAUTH2 APOP");
  for (const char* bad : {"", " ", ",", "CRAM-MD5", "PLAIN x", "all PLAIN", "SCRAM-SHA-1"}) {
    EXPECT_THROW((void)canonical_mechanisms(bad), UserError) << bad;
  }
}

TEST(TenantPolicy, ParseEveryOption) {
  TenantPolicyArgs a;
  EXPECT_FALSE(parse_tenant_policy(a).any());
  a.login_delay = "0";
  a.expire_days = "Never";
  a.require_tls = "Yes";
  a.sessions_max = "Default";
  a.logins_per_minute = "60";
  a.mechanisms = "apop";
  const TenantPolicyUpdate u = parse_tenant_policy(a);
  EXPECT_TRUE(u.any());
  EXPECT_EQ(u.login_delay_s.value, "0");
  EXPECT_TRUE(u.expire_days.set);
  EXPECT_EQ(u.expire_days.value, "");
  EXPECT_EQ(u.require_tls.value, "true");
  EXPECT_TRUE(u.sessions_max.set);
  EXPECT_EQ(u.sessions_max.value, "");
  EXPECT_EQ(u.logins_per_minute.value, "60");
  EXPECT_EQ(u.mechanisms.value, "APOP");
  EXPECT_FALSE(u.delete_mode.set);
  EXPECT_FALSE(u.retention_days.set);
}

TEST(TenantPolicy, RetentionDays) {
  TenantPolicyArgs a;
  a.retention_days = "30";
  TenantPolicyUpdate u = parse_tenant_policy(a);
  EXPECT_TRUE(u.any());
  EXPECT_TRUE(u.retention_days.set);
  EXPECT_EQ(u.retention_days.value, "30");
  a.retention_days = "NEVER";
  u = parse_tenant_policy(a);
  EXPECT_TRUE(u.retention_days.set);
  EXPECT_EQ(u.retention_days.value, "");  // NULL: kept forever
  for (const char* bad : {"0", "-1", "", "default", "30d", "2147483648"}) {
    a.retention_days = bad;
    EXPECT_THROW((void)parse_tenant_policy(a), UserError) << bad;
  }
}

TEST(TenantPolicy, DeleteMode) {
  TenantPolicyArgs a;
  a.delete_mode = "Hide";
  const TenantPolicyUpdate u = parse_tenant_policy(a);
  EXPECT_TRUE(u.any());
  EXPECT_EQ(u.delete_mode.value, "hide");
  a.delete_mode = "DELETE";
  EXPECT_EQ(parse_tenant_policy(a).delete_mode.value, "delete");
}

TEST(TenantPolicy, RefusesBadNumbers) {
  auto refused = [](auto setter) {
    TenantPolicyArgs a;
    setter(a);
    EXPECT_THROW((void)parse_tenant_policy(a), UserError);
  };
  refused([](TenantPolicyArgs& a) { a.login_delay = "-1"; });
  refused([](TenantPolicyArgs& a) { a.login_delay = "+1"; });
  refused([](TenantPolicyArgs& a) { a.login_delay = "1 "; });
  refused([](TenantPolicyArgs& a) { a.login_delay = "2147483648"; });
  refused([](TenantPolicyArgs& a) { a.expire_days = "default"; });
  refused([](TenantPolicyArgs& a) { a.sessions_max = "0"; });
  refused([](TenantPolicyArgs& a) { a.sessions_max = "never"; });
  refused([](TenantPolicyArgs& a) { a.logins_per_minute = ""; });
  refused([](TenantPolicyArgs& a) { a.require_tls = "1"; });
  refused([](TenantPolicyArgs& a) { a.delete_mode = "purge"; });
  refused([](TenantPolicyArgs& a) { a.delete_mode = ""; });
  TenantPolicyArgs ok;
  ok.login_delay = "2147483647";
  EXPECT_EQ(parse_tenant_policy(ok).login_delay_s.value, "2147483647");
}

}  // namespace
}  // namespace popgate::admin
