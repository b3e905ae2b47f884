// The admin endpoint's request handling (contract §2), free of any HTTP
// library: a method, a target, headers of interest and a body in; a status,
// a content type and a body out. The HTTP plumbing is in admin_endpoint.cpp;
// the routes, how a request is matched to one, and their handlers are in
// admin_routes.{h,cpp}.
//
// Every request but /healthz and /readyz needs `Authorization: Bearer
// <admin token>`; without it: 401 and nothing changes. Every change is
// written to the audit log (who, what, result).
//
// Thread-safety: handle() may run concurrently on several threads. It
// blocks (synced policy writes, mailbox scans): call it on the blocking pool.
#pragma once

#include "server/admin_message.h"

namespace oms::server {

struct ServerContext;

class AdminApi {
 public:
  explicit AdminApi(ServerContext& ctx) : ctx_(ctx) {}
  AdminResponse handle(const AdminRequest& req);

 private:
  ServerContext& ctx_;
};

}  // namespace oms::server
