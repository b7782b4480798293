// Invariant checks. POPGATE_CHECK is always on and aborts: use it where going
// on would corrupt state. POPGATE_ASSERT is for cheap invariants in debug
// builds. Never check what a peer controls with either: that is input, and
// input gets an error reply, not an abort.
#pragma once

#include <cstdio>
#include <cstdlib>

#define POPGATE_CHECK(cond, what)                                                  \
  do {                                                                             \
    if (!(cond)) [[unlikely]] {                                                    \
      std::fprintf(stderr, "popgate: check failed at %s:%d: %s (%s)\n", __FILE__, \
                   __LINE__, #cond, what);                                         \
      std::abort();                                                                \
    }                                                                              \
  } while (0)

#ifdef NDEBUG
#define POPGATE_ASSERT(cond) \
  do {                       \
  } while (0)
#else
#define POPGATE_ASSERT(cond) POPGATE_CHECK(cond, "assertion")
#endif
