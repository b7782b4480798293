#include "storage/pg_errors.h"

#include <gtest/gtest.h>

#include <string>

namespace popgate::storage {
namespace {

TEST(ClassifySqlstate, RetryableCodesAreTemporary) {
  for (const char* code : {"08000", "08003", "08006", "08001", "08004", "08P01", "40001", "40P01",
                           "57P01", "57P02", "57P03", "53000", "53100", "53200", "53300", "57014",
                           "55P03"}) {
    EXPECT_EQ(classify_sqlstate(code), Status::kTemporary) << code;
  }
}

TEST(ClassifySqlstate, EverythingElseIsPermanent) {
  for (const char* code : {"23505", "23503", "23514", "42P01", "42703", "22021", "22P02", "40002",
                           "40003", "57000", "57P04", "55000", "55006", "XX000", "0A000", "25P02",
                           "P0001"}) {
    EXPECT_EQ(classify_sqlstate(code), Status::kPermanent) << code;
  }
}

TEST(ClassifySqlstate, MissingCodeMeansLibpqFailedSoTemporary) {
  EXPECT_EQ(classify_sqlstate(""), Status::kTemporary);
}

TEST(ClassifySqlstate, MalformedCodeIsPermanent) {
  EXPECT_EQ(classify_sqlstate("08"), Status::kPermanent);
  EXPECT_EQ(classify_sqlstate("080000"), Status::kPermanent);
}

TEST(AssignError, KeepsFirstLineOnly) {
  std::string out;
  assign_error(out, "connection lost: ",
               "server closed the connection unexpectedly\n\tThis probably means...");
  EXPECT_EQ(out, "connection lost: server closed the connection unexpectedly");
  assign_error(out, "timeout", "");
  EXPECT_EQ(out, "timeout");
}

TEST(AssignError, IsBounded) {
  std::string out;
  assign_error(out, "p: ", std::string(1000, 'x'));
  EXPECT_EQ(out.size(), kErrorBytesMax);
  assign_error(out, std::string(1000, 'p'), "m");
  EXPECT_EQ(out.size(), kErrorBytesMax);
}

TEST(StatusNames, AreDistinct) {
  EXPECT_EQ(to_string(Status::kOk), "ok");
  EXPECT_EQ(to_string(Status::kInUse), "in use");
  EXPECT_NE(to_string(Status::kTemporary), to_string(Status::kPermanent));
}

}  // namespace
}  // namespace popgate::storage
