// The admin endpoint's request handling (contract §2), free of any HTTP
// library: a method, a target, headers of interest and a body in; a status,
// a content type and a body out. The HTTP plumbing is in http_session.cpp;
// the routes, how a request is matched to one, and their handlers are in
// admin_routes.h and admin_handlers.cpp.
//
// Every request but /healthz and /readyz needs `Authorization: Bearer
// <admin token>`; without it: 401 and nothing changes. Every change is
// written to the audit log (who, what, result).
//
// Thread-safety: handle() may run concurrently on several threads. It
// blocks (synced policy writes, mailbox scans): call it on the blocking pool.
#pragma once

#include <string>
#include <string_view>

namespace oms::server {

struct ServerContext;

struct AdminRequest {
  std::string_view method;
  std::string_view target;
  std::string_view authorization;
  std::string_view body;
  std::string_view remote;  // peer address, for the audit log
};

struct AdminResponse {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
};

class AdminApi {
 public:
  explicit AdminApi(ServerContext& ctx) : ctx_(ctx) {}
  AdminResponse handle(const AdminRequest& req);

 private:
  ServerContext& ctx_;
};

}  // namespace oms::server
