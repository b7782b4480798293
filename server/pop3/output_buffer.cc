#include "server/pop3/output_buffer.h"

#include <cstring>
#include <new>

namespace popgate::pop3 {

BufferPool::BufferPool(size_t block_bytes) : block_bytes_(block_bytes) {}

BufferPool::~BufferPool() {
  for (char* block : free_) ::operator delete(block);
}

char* BufferPool::acquire() {
  if (!free_.empty()) {
    char* block = free_.back();
    free_.pop_back();
    return block;
  }
  ++total_;
  // Capacity for every block ever made, so release() never allocates.
  if (free_.capacity() < total_) free_.reserve(total_ * 2);
  return static_cast<char*>(::operator new(block_bytes_));
}

void BufferPool::release(char* block) noexcept { free_.push_back(block); }

OutputBuffer::~OutputBuffer() {
  if (block_ != nullptr) pool_->release(block_);
}

size_t OutputBuffer::space() const noexcept {
  if (block_ == nullptr) return capacity();
  return sending_ ? capacity() - end_ : capacity() - size();
}

void OutputBuffer::compact() noexcept {
  if (begin_ == 0 || sending_) return;
  std::memmove(block_, block_ + begin_, size());
  end_ -= begin_;
  begin_ = 0;
}

char* OutputBuffer::reserve(size_t bytes) {
  if (block_ == nullptr) {
    if (bytes > capacity()) return nullptr;
    block_ = pool_->acquire();
    begin_ = end_ = 0;
  }
  if (capacity() - end_ < bytes) compact();
  if (capacity() - end_ < bytes) return nullptr;
  return block_ + end_;
}

char* OutputBuffer::reserve_all(size_t* got) {
  char* at = reserve(1);
  *got = at == nullptr ? 0 : capacity() - end_;
  return at;
}

bool OutputBuffer::append(std::string_view bytes) {
  char* at = reserve(bytes.size());
  if (at == nullptr) return false;
  std::memcpy(at, bytes.data(), bytes.size());
  commit(bytes.size());
  return true;
}

void OutputBuffer::consume(size_t bytes) noexcept {
  sending_ = false;
  begin_ += static_cast<uint32_t>(bytes);
  if (begin_ == end_) {
    if (block_ != nullptr) pool_->release(block_);
    block_ = nullptr;
    begin_ = end_ = 0;
  }
}

}  // namespace popgate::pop3
