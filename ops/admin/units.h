// Byte counts as operators type and read them: "10M" in, "10.0 MiB" out.
// Pure, no database.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace popgate::admin {

// "1048576", "512K", "10M", "2G", "1T" (case-insensitive; binary multiples:
// K = 1024). nullopt for anything else, negative numbers, or more than
// INT64_MAX bytes (the database column is a bigint).
[[nodiscard]] std::optional<int64_t> parse_byte_size(std::string_view text);

// "0 B", "999 B", "1.0 KiB", "10.0 MiB", "2.5 GiB": one decimal above 1 KiB.
[[nodiscard]] std::string format_bytes(uint64_t bytes);

}  // namespace popgate::admin
