#include "ops/schema_check.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <pqxx/pqxx>
#include <random>
#include <string>

#include "storage/migrations.h"

namespace popgate::ops {
namespace {

std::vector<int> all_versions() {
  std::vector<int> versions;
  for (const auto& m : storage::migrations()) versions.push_back(m.version);
  return versions;
}

TEST(CompareSchema, Current) { EXPECT_EQ(compare_schema(all_versions()), std::nullopt); }

TEST(CompareSchema, Behind) {
  const auto reason = compare_schema({});
  ASSERT_TRUE(reason);
  EXPECT_NE(reason->find("behind by " + std::to_string(all_versions().size())), std::string::npos)
      << *reason;
  EXPECT_NE(reason->find("popgate-admin migrate"), std::string::npos) << *reason;
}

TEST(CompareSchema, Ahead) {
  auto versions = all_versions();
  versions.push_back(storage::schema_version() + 1);
  const auto reason = compare_schema(versions);
  ASSERT_TRUE(reason);
  EXPECT_NE(reason->find("ahead"), std::string::npos) << *reason;
}

TEST(CheckSchema, Unreachable) {
  const auto reason = check_schema("host=127.0.0.1 port=1 dbname=x connect_timeout=5");
  ASSERT_TRUE(reason);
  EXPECT_TRUE(reason->starts_with("database unreachable: ")) << *reason;
  EXPECT_EQ(reason->find('\n'), std::string::npos) << *reason;
}

TEST(CheckSchema, BadDsnIsAReasonNotAThrow) {
  const auto reason = check_schema("this is not a conninfo");
  ASSERT_TRUE(reason);
}

// Against the test PostgreSQL (the ctest fixture migrates it).
class CheckSchemaDb : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* file = std::getenv("POPGATE_TEST_DSN_FILE");
    if (file == nullptr) GTEST_SKIP() << "POPGATE_TEST_DSN_FILE is not set (run through ctest)";
    std::ifstream in(file);
    std::getline(in, dsn_);
    if (dsn_.empty()) GTEST_SKIP() << "no DSN in " << file;
  }
  // A fresh, empty database owned by popgate; dropped in TearDown.
  std::string scratch_database() {
    scratch_ = "popgate_sc_" + std::to_string(std::random_device{}());
    pqxx::connection admin(dsn_ + " user=postgres dbname=postgres");
    pqxx::nontransaction tx(admin);
    tx.exec("CREATE DATABASE " + scratch_ + " OWNER popgate");
    return dsn_ + " dbname=" + scratch_;
  }
  void TearDown() override {
    if (scratch_.empty()) return;
    pqxx::connection admin(dsn_ + " user=postgres dbname=postgres");
    pqxx::nontransaction tx(admin);
    tx.exec("DROP DATABASE IF EXISTS " + scratch_ + " WITH (FORCE)");
  }
  static void record_versions(const std::string& dsn, const std::vector<int>& versions) {
    pqxx::connection db(dsn);
    pqxx::work tx(db);
    tx.exec(
        "CREATE SCHEMA IF NOT EXISTS popgate; CREATE TABLE IF NOT EXISTS "
        "popgate.schema_migrations (version int PRIMARY KEY, name text NOT NULL, "
        "applied_at timestamptz NOT NULL DEFAULT now())");
    for (const int v : versions) {
      tx.exec_params("INSERT INTO popgate.schema_migrations (version, name) VALUES ($1, 'x')", v);
    }
    tx.commit();
  }

  std::string dsn_;
  std::string scratch_;
};

TEST_F(CheckSchemaDb, SharedDatabaseIsCurrent) { EXPECT_EQ(check_schema(dsn_), std::nullopt); }

TEST_F(CheckSchemaDb, EmptyDatabaseIsBehind) {
  const std::string dsn = scratch_database();
  const auto reason = check_schema(dsn);
  ASSERT_TRUE(reason);
  EXPECT_NE(reason->find("behind by"), std::string::npos) << *reason;
}

TEST_F(CheckSchemaDb, CurrentThenAhead) {
  const std::string dsn = scratch_database();
  record_versions(dsn, all_versions());
  EXPECT_EQ(check_schema(dsn), std::nullopt);
  record_versions(dsn, {storage::schema_version() + 1});
  const auto reason = check_schema(dsn);
  ASSERT_TRUE(reason);
  EXPECT_NE(reason->find("ahead"), std::string::npos) << *reason;
}

}  // namespace
}  // namespace popgate::ops
