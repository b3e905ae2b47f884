#include "server/frame_queue.h"

#include <memory>
#include <string>

#include <doctest/doctest.h>

namespace oms::server {
namespace {

FrameQueue::Frame frame(int i) { return std::make_shared<const std::string>(std::to_string(i)); }

TEST_CASE("frame queue: first in, first out") {
  FrameQueue q;
  CHECK(q.empty());
  for (int i = 0; i < 5; ++i) q.push_back(frame(i));
  CHECK(q.size() == 5);
  for (int i = 0; i < 5; ++i) {
    CHECK(*q.front() == std::to_string(i));
    q.pop_front();
  }
  CHECK(q.empty());
}

TEST_CASE("frame queue: a queue that never empties stays bounded") {
  FrameQueue q;
  q.push_back(frame(0));
  int next = 1;
  for (int i = 0; i < 10000; ++i) {
    q.push_back(frame(next++));
    q.pop_front();
    CHECK(q.size() == 1);
    CHECK(q.held() <= 2 * 64 + 1);
  }
  CHECK(*q.front() == std::to_string(next - 1));
}

TEST_CASE("frame queue: an emptied queue gives back the room of a burst") {
  FrameQueue q;
  for (int i = 0; i < 1000; ++i) q.push_back(frame(i));
  while (!q.empty()) q.pop_front();
  CHECK(q.capacity() <= FrameQueue::kKeepCapacity);
}

TEST_CASE("frame queue: the slow-consumer cut keeps only the frame being written") {
  FrameQueue q;
  for (int i = 0; i < 10; ++i) q.push_back(frame(i));
  q.pop_front();
  q.keep_front_only();
  CHECK(q.size() == 1);
  CHECK(*q.front() == "1");
  q.clear();
  CHECK(q.empty());
}

}  // namespace
}  // namespace oms::server
