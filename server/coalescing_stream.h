// A stream layer under the WebSocket that lets a burst of frames leave in
// one write: while the session says more frames follow ("corked"), a write
// is copied into a buffer and completes at once; the next uncorked write
// sends the buffer and its own bytes together. Beast keeps doing all the
// WebSocket work (framing, control frames, close handshake) on top of it.
//
// Rules that keep it safe:
//  - Beast runs one write at a time on its next layer, so the buffer is only
//    touched by that write (and by teardown, after the last write).
//  - Every real write happens inside a write operation Beast started. Beast's
//    own idle ping holds the stream only weakly, so an operation never touches
//    the stream after its write completed: buffered bytes are moved into the
//    operation before they are written. (Teardown runs inside Beast's close
//    or read operation, whose handler holds the session.)
//  - At most kMaxPendingBytes wait in the buffer: a write that would go past
//    it is sent for real, so a peer that does not read still stalls the
//    session's writes (and the slow-consumer limit still applies).
//  - Teardown (after the close handshake) first sends what is buffered.
//  - A buffered write's completion is posted, never invoked inline.
//
// Included by ws_session.cpp only (it pulls in Asio and Beast).
#pragma once

#include <cstddef>
#include <memory>
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

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return next_.async_read_some(buffers, std::forward<Token>(token));
  }

  // The bytes are copied into the buffer here, so the operations below do
  // not depend on the buffer sequence's type (Beast passes several): fewer
  // template instances, a much shorter compile.
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    const std::size_t size = boost::asio::buffer_size(buffers);
    const bool buffer_only = corked_ && pending_.size() + size <= kMaxPendingBytes;
    append(buffers);
    return boost::asio::async_compose<Token, void(boost::beast::error_code, std::size_t)>(
        WriteOp{this, size, buffer_only, nullptr}, token, next_);
  }

  // Beast's close handshake ends with a teardown of the next layer: send
  // what is buffered first (the close frame may be in it).
  template <class Handler>
  friend void async_teardown(boost::beast::role_type role, CoalescingStream& s, Handler&& handler) {
    boost::asio::async_compose<Handler, void(boost::beast::error_code)>(TeardownOp{&s, role, nullptr}, handler,
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
  // The buffered bytes, now owned by the caller; the buffer is empty after.
  std::unique_ptr<std::string> take_pending() {
    auto out = std::make_unique<std::string>();
    out->swap(pending_);
    return out;
  }

  template <class ConstBuffers>
  void append(const ConstBuffers& buffers) {
    for (auto b : boost::beast::buffers_range_ref(buffers))
      pending_.append(static_cast<const char*>(b.data()), b.size());
  }

  // A write whose bytes are in pending_ already: either it completes at once
  // (buffer_only: more frames follow), or it sends everything buffered.
  struct WriteOp {
    CoalescingStream* s;
    std::size_t size;
    bool buffer_only;
    std::unique_ptr<std::string> flushing;  // the bytes being sent (stable address)
    enum { kStart, kDone } state = kStart;

    template <class Self>
    void operator()(Self& self, boost::beast::error_code ec = {}, std::size_t = 0) {
      if (state == kDone) return self.complete(ec, ec ? 0 : size);
      state = kDone;
      if (buffer_only) return boost::asio::post(s->get_executor(), std::move(self));
      flushing = s->take_pending();
      return boost::asio::async_write(s->next_, boost::asio::buffer(*flushing), std::move(self));
    }
  };

  struct TeardownOp {
    CoalescingStream* s;
    boost::beast::role_type role;
    std::unique_ptr<std::string> flushing;
    enum { kStart, kFlushed, kTornDown } state = kStart;

    template <class Self>
    void operator()(Self& self, boost::beast::error_code ec = {}, std::size_t = 0) {
      switch (state) {
        case kStart:
          state = kFlushed;
          if (!s->pending_.empty()) {
            flushing = s->take_pending();
            return boost::asio::async_write(s->next_, boost::asio::buffer(*flushing), std::move(self));
          }
          [[fallthrough]];
        case kFlushed: {
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
