// What every popgate-admin command gets: where to print (results to out(),
// progress and warnings to err()), where to read
// secrets from, and the database (connected on first use, so that commands
// can reject bad arguments before touching it). Also the exit codes and the
// one exception type commands throw for mistakes the user can fix.
// Must not know: the command line syntax (cli.cc owns that).
#pragma once

#include <iosfwd>
#include <memory>
#include <pqxx/connection>
#include <stdexcept>
#include <string>

namespace popgate::admin {

inline constexpr int kExitOk = 0;
inline constexpr int kExitUser = 1;      // unknown tenant, duplicate user, bad file or value
inline constexpr int kExitUsage = 2;     // the command line itself is wrong
inline constexpr int kExitDatabase = 3;  // cannot connect, or the database refused
inline constexpr int kExitInternal = 4;  // anything else: a bug

// A mistake the user can fix; what() is the whole message, printed as is.
class UserError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Context {
 public:
  Context(std::string dsn, std::ostream& out, std::istream& in, std::ostream& err);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // Connects on the first call; throws pqxx::broken_connection.
  [[nodiscard]] pqxx::connection_base& db();
  [[nodiscard]] std::ostream& out() noexcept { return out_; }
  [[nodiscard]] std::istream& in() noexcept { return in_; }
  [[nodiscard]] std::ostream& err() noexcept { return err_; }

 private:
  std::string dsn_;
  std::ostream& out_;
  std::istream& in_;
  std::ostream& err_;
  std::unique_ptr<pqxx::connection> db_;
};

}  // namespace popgate::admin
