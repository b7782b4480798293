// FixedString<N>: up to N bytes held inline, for names and messages copied
// out of a peer's input on the data path without allocating.
// Must not know: anything but the standard library.
#pragma once

#include <array>
#include <cstddef>
#include <cstring>
#include <string_view>

namespace popgate::auth {

template <size_t N>
class FixedString {
 public:
  static constexpr size_t kCapacity = N;

  // Replaces the contents; false (and left empty) when `text` does not fit.
  [[nodiscard]] bool assign(std::string_view text) noexcept {
    clear();
    return append(text);
  }
  // False (contents unchanged) when the result would not fit.
  [[nodiscard]] bool append(std::string_view text) noexcept {
    if (text.size() > N - size_) return false;
    if (!text.empty()) std::memcpy(bytes_.data() + size_, text.data(), text.size());
    size_ += text.size();
    return true;
  }
  [[nodiscard]] bool push_back(char c) noexcept { return append(std::string_view(&c, 1)); }
  void clear() noexcept { size_ = 0; }
  // Overwrites the bytes too, for contents that were secret.
  void wipe() noexcept {
    volatile char* p = bytes_.data();
    for (size_t i = 0; i < N; ++i) p[i] = 0;
    size_ = 0;
  }

  [[nodiscard]] std::string_view view() const noexcept { return {bytes_.data(), size_}; }
  [[nodiscard]] size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] bool operator==(std::string_view other) const noexcept { return view() == other; }

 private:
  std::array<char, N> bytes_{};
  size_t size_ = 0;
};

}  // namespace popgate::auth
