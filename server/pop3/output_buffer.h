// OutputBuffer: a session's pending reply bytes, in one fixed-size block
// borrowed from the shard's BufferPool only while there is something to
// send. An idle session holds no block, which keeps idle sessions small; a
// busy one never grows past one block, which bounds memory per session and
// is what makes LIST, UIDL, RETR and TOP resumable instead of buffered.
//
// While a send is in flight the bytes it covers must not move: the owner
// calls begin_send() before handing pending() to the kernel and consume()
// when the send completes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace popgate::pop3 {

// Fixed-size blocks on a free list. Single-threaded (one per shard). Blocks
// are allocated while the shard warms up and reused after that.
class BufferPool {
 public:
  explicit BufferPool(size_t block_bytes);
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  [[nodiscard]] char* acquire();
  void release(char* block) noexcept;

  [[nodiscard]] size_t block_bytes() const noexcept { return block_bytes_; }
  [[nodiscard]] size_t blocks_total() const noexcept { return total_; }
  [[nodiscard]] size_t blocks_in_use() const noexcept { return total_ - free_.size(); }

 private:
  const size_t block_bytes_;
  size_t total_ = 0;
  std::vector<char*> free_;
};

class OutputBuffer {
 public:
  explicit OutputBuffer(BufferPool& pool) noexcept : pool_(&pool) {}
  ~OutputBuffer();
  OutputBuffer(const OutputBuffer&) = delete;
  OutputBuffer& operator=(const OutputBuffer&) = delete;

  [[nodiscard]] size_t size() const noexcept { return end_ - begin_; }
  [[nodiscard]] bool empty() const noexcept { return end_ == begin_; }
  [[nodiscard]] size_t capacity() const noexcept { return pool_->block_bytes(); }
  // Room that reserve() can offer now (compacting if no send is in flight).
  [[nodiscard]] size_t space() const noexcept;

  // A writable region of at least `bytes`, or nullptr if there is not that
  // much room. Follow with commit(n <= space offered).
  [[nodiscard]] char* reserve(size_t bytes);
  // Like reserve() but offers everything there is; *got receives the size.
  [[nodiscard]] char* reserve_all(size_t* got);
  void commit(size_t bytes) noexcept { end_ += static_cast<uint32_t>(bytes); }
  [[nodiscard]] bool append(std::string_view bytes);

  [[nodiscard]] std::string_view pending() const noexcept {
    return {block_ + begin_, size()};
  }
  void begin_send() noexcept { sending_ = true; }
  [[nodiscard]] bool sending() const noexcept { return sending_; }
  // A send of `bytes` from the front completed. Returns the block to the
  // pool once everything is sent.
  void consume(size_t bytes) noexcept;

 private:
  void compact() noexcept;

  BufferPool* pool_;
  char* block_ = nullptr;
  uint32_t begin_ = 0;
  uint32_t end_ = 0;
  bool sending_ = false;
};

}  // namespace popgate::pop3
