// popgate's connections plan each prepared statement once (plan_cache_mode
// = force_generic_plan, storage/pg_connector.cc). That is only safe if the
// generic plan of every statement, the one planned without its parameter
// values, still finds its rows through an index: a generic plan that
// scanned a whole table would run on every login of every user. This test
// asks PostgreSQL for each statement's generic plan with sequential scans
// priced out, so a statement whose key no index serves shows up as a
// "Seq Scan" whatever the size of the test tables.
#include <gtest/gtest.h>

#include <string>

#include "storage/pg_statements.h"
#include "tests/storage/pg_test_support.h"

namespace popgate::storage {
namespace {

TEST(GenericPlans, EveryStatementReadsThroughAnIndex) {
  std::string why;
  const std::string dsn = test_support::test_dsn(why);
  if (dsn.empty()) GTEST_SKIP() << why;
  test_support::TestDb db(dsn);
  ASSERT_TRUE(db.ok()) << db.error();
  db.exec("BEGIN");
  db.exec("SET LOCAL plan_cache_mode = force_generic_plan");
  db.exec("SET LOCAL enable_seqscan = off");
  for (std::size_t i = 0; i < kStatementCount; ++i) {
    const StatementDef& s = statement_def(static_cast<StatementId>(i));
    // Types named by PostgreSQL from the statement table's OIDs; every value
    // NULL, since a generic plan does not look at them.
    std::string types;
    std::string nulls;
    for (int p = 0; p < s.param_count; ++p) {
      const std::string sep = p == 0 ? "" : ", ";
      types += sep + db.scalar_text("SELECT $1::oid::regtype::text", {std::to_string(s.param_types[p])});
      nulls += sep + "NULL";
    }
    const std::string name = std::string("gp_") + s.name;
    db.exec("PREPARE " + name + (types.empty() ? "" : "(" + types + ")") + " AS " + s.sql);
    const ResultHandle plan = db.exec("EXPLAIN EXECUTE " + name + (nulls.empty() ? "" : "(" + nulls + ")"));
    ASSERT_NE(plan, nullptr) << s.name;
    std::string text;
    for (int r = 0; r < PQntuples(plan.get()); ++r) text += std::string(PQgetvalue(plan.get(), r, 0)) + "\n";
    EXPECT_EQ(text.find("Seq Scan"), std::string::npos) << s.name << "'s generic plan:\n" << text;
  }
  db.exec("ROLLBACK");
}

}  // namespace
}  // namespace popgate::storage
