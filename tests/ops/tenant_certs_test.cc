// The pure rules of `popgate-admin tenant cert set`: certificate names, and
// which names a tenant may serve.
#include "ops/admin/tenant_certs.h"

#include <gtest/gtest.h>

namespace popgate::admin {
namespace {

using Names = std::vector<std::string>;

TEST(TenantCerts, CertificateNames) {
  EXPECT_EQ(require_certificate_name("pop"), "pop");
  EXPECT_EQ(require_certificate_name("ECDSA-2026.1_b"), "ecdsa-2026.1_b");
  EXPECT_EQ(require_certificate_name(std::string(kCertificateNameBytesMax, 'a')),
            std::string(kCertificateNameBytesMax, 'a'));
  for (const std::string& bad : {std::string(), std::string(kCertificateNameBytesMax + 1, 'a'),
                                std::string("-pop"), std::string(".pop"), std::string("_pop"),
                                std::string("pop mail"), std::string("pop/x"),
                                std::string("p\xc3\xb6p"), std::string("pop\n")}) {
    EXPECT_THROW((void)require_certificate_name(bad), UserError) << bad;
  }
}

TEST(TenantCerts, NamesWithinTheDomainPass) {
  EXPECT_EQ(certificate_name_problems({"example.org", "pop.example.org", "*.example.org",
                                       "a.b.example.org", "*.mail.example.org"},
                                      "example.org", {}),
            Names{});
}

TEST(TenantCerts, NamesOutsideTheDomainAreRefusedOneByOne) {
  const Names problems = certificate_name_problems(
      {"pop.example.org", "example.com", "badexample.org", "*.org", "localhost"}, "example.org",
      {});
  EXPECT_EQ(problems, (Names{"name 'example.com' is neither example.org nor under it",
                             "name 'badexample.org' is neither example.org nor under it",
                             "name '*.org' is neither example.org nor under it",
                             "name 'localhost' is neither example.org nor under it"}));
}

TEST(TenantCerts, MalformedWildcardsAreRefused) {
  const Names problems =
      certificate_name_problems({"a*.example.org", "pop.*.example.org"}, "example.org", {});
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_NE(problems[0].find("only a whole first label"), std::string::npos) << problems[0];
}

TEST(TenantCerts, AMoreSpecificTenantsNamesAreTheirs) {
  const Names others{"b.example.org", "deep.c.example.org"};
  // Names between ours and theirs stay ours; a wildcard one label above a
  // tenant matches that tenant's own name.
  EXPECT_EQ(certificate_name_problems({"pop.example.org", "c.example.org", "pop.c.example.org",
                                       "*.example.org", "*.c.example.org"},
                                      "example.org", others),
            (Names{"name '*.example.org' belongs to tenant b.example.org",
                   "name '*.c.example.org' belongs to tenant deep.c.example.org"}));
  EXPECT_EQ(certificate_name_problems({"b.example.org", "pop.b.example.org", "*.b.example.org",
                                       "x.deep.c.example.org", "*.deep.c.example.org"},
                                      "example.org", others),
            (Names{"name 'b.example.org' belongs to tenant b.example.org",
                   "name 'pop.b.example.org' belongs to tenant b.example.org",
                   "name '*.b.example.org' belongs to tenant b.example.org",
                   "name 'x.deep.c.example.org' belongs to tenant deep.c.example.org",
                   "name '*.deep.c.example.org' belongs to tenant deep.c.example.org"}));
}

}  // namespace
}  // namespace popgate::admin
