// A stream layer under the WebSocket that lets a burst of frames leave in
// one write: while the session says more frames follow ("corked"), a write
// is copied into a buffer and completes at once; the next uncorked write
// sends the buffer and its own bytes together. Beast keeps doing all the
// WebSocket work (framing, control frames, close handshake) on top of it.
//
// Rules that keep it safe:
//  - Beast runs one write at a time on its next layer, so the buffer is only
//    touched by that write (and by teardown, after the last write).
//  - Every real write happens inside a write operation Beast started, whose
//    handler keeps the session alive; nothing runs detached.
//  - At most kMaxPendingBytes wait in the buffer: a write that would go past
//    it is sent for real, so a peer that does not read still stalls the
//    session's writes (and the slow-consumer limit still applies).
//  - Teardown (after the close handshake) first sends what is buffered.
//  - A buffered write's completion is posted, never invoked inline.
//
// Included by ws_session.cpp only (it pulls in Asio and Beast).
#pragma once

#include <cstddef>
#include <string>
#include <utility>

#include <boost/asio/compose.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_range.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/websocket/teardown.hpp>

namespace oms::server {

template <class NextLayer>
class CoalescingStream {
 public:
  using executor_type = typename NextLayer::executor_type;
  using next_layer_type = NextLayer;
  static constexpr std::size_t kMaxPendingBytes = 64 * 1024;

  template <class... Args>
  explicit CoalescingStream(Args&&... args) : next_(std::forward<Args>(args)...) {}

  executor_type get_executor() noexcept { return next_.get_executor(); }
  next_layer_type& next_layer() noexcept { return next_; }
  const next_layer_type& next_layer() const noexcept { return next_; }

  // True: the writes that follow are buffered (more frames are coming).
  // The session uncorks before the last frame of a burst.
  void set_corked(bool corked) noexcept { corked_ = corked; }
  std::size_t pending_bytes() const noexcept { return pending_.size(); }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return next_.async_read_some(buffers, std::forward<Token>(token));
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return boost::asio::async_compose<Token, void(boost::beast::error_code, std::size_t)>(
        WriteOp<ConstBuffers>{this, buffers}, token, next_);
  }

  // Beast's close handshake ends with a teardown of the next layer: send
  // what is buffered first (the close frame may be in it).
  template <class Handler>
  friend void async_teardown(boost::beast::role_type role, CoalescingStream& s, Handler&& handler) {
    boost::asio::async_compose<Handler, void(boost::beast::error_code)>(TeardownOp{&s, role}, handler,
                                                                         s.next_);
  }
  friend void teardown(boost::beast::role_type role, CoalescingStream& s, boost::beast::error_code& ec) {
    if (!s.pending_.empty()) {
      boost::asio::write(s.next_, boost::asio::buffer(s.pending_), ec);
      s.pending_.clear();
      if (ec) return;
    }
    using boost::beast::websocket::teardown;
    teardown(role, s.next_, ec);
  }

 private:
  template <class ConstBuffers>
  void append(const ConstBuffers& buffers) {
    for (auto b : boost::beast::buffers_range_ref(buffers))
      pending_.append(static_cast<const char*>(b.data()), b.size());
  }

  template <class ConstBuffers>
  struct WriteOp {
    CoalescingStream* s;
    ConstBuffers buffers;
    std::size_t size = 0;
    enum { kStart, kBuffered, kDirect, kFlush } state = kStart;

    template <class Self>
    void operator()(Self& self, boost::beast::error_code ec = {}, std::size_t n = 0) {
      switch (state) {
        case kStart:
          size = boost::asio::buffer_size(buffers);
          if (s->corked_ && s->pending_.size() + size <= kMaxPendingBytes) {
            s->append(buffers);
            state = kBuffered;
            return boost::asio::post(s->get_executor(), std::move(self));
          }
          if (s->pending_.empty()) {
            state = kDirect;
            return s->next_.async_write_some(buffers, std::move(self));
          }
          s->append(buffers);
          state = kFlush;
          return boost::asio::async_write(s->next_, boost::asio::buffer(s->pending_), std::move(self));
        case kBuffered:
          return self.complete({}, size);
        case kDirect:
          return self.complete(ec, n);
        case kFlush:
          s->pending_.clear();
          return self.complete(ec, ec ? 0 : size);
      }
    }
  };

  struct TeardownOp {
    CoalescingStream* s;
    boost::beast::role_type role;
    enum { kStart, kFlushed, kTornDown } state = kStart;

    template <class Self>
    void operator()(Self& self, boost::beast::error_code ec = {}, std::size_t = 0) {
      switch (state) {
        case kStart:
          state = kFlushed;
          if (!s->pending_.empty())
            return boost::asio::async_write(s->next_, boost::asio::buffer(s->pending_), std::move(self));
          [[fallthrough]];
        case kFlushed: {
          s->pending_.clear();
          if (ec) return self.complete(ec);
          state = kTornDown;
          using boost::beast::websocket::async_teardown;
          return async_teardown(role, s->next_, std::move(self));
        }
        case kTornDown:
          return self.complete(ec);
      }
    }
  };

  NextLayer next_;
  std::string pending_;
  bool corked_ = false;
};

}  // namespace oms::server
