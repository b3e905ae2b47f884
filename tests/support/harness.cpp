#include "tests/support/harness.h"

#include <sstream>

#include <doctest/doctest.h>

namespace oms::test {

std::unique_ptr<WsClient> connect_client(const OmsdProcess& omsd) {
  auto c = std::make_unique<WsClient>();
  c->connect(omsd.client_port());
  return c;
}

std::unique_ptr<WsClient> sign_in(const OmsdProcess& omsd, std::string_view user,
                                  const std::vector<std::string>& features) {
  auto c = connect_client(omsd);
  c->hello(omsd.token(user), features);
  return c;
}

std::unique_ptr<WsClient> sign_in_older(const OmsdProcess& omsd, std::string_view user) {
  auto c = connect_client(omsd);
  c->hello_older(omsd.token(user));
  return c;
}

Json user_info(const OmsdProcess& omsd, std::string_view user) {
  const HttpResult r = omsd.admin().get("/v1/users/" + std::string(user));
  CHECK_MESSAGE(r.status == 200, "GET /v1/users/" << user << " -> " << r.status << " " << r.raw);
  if (!r.json.is_object()) throw TestError("GET /v1/users/" + std::string(user) + ": not JSON: " + r.raw);
  return r.json.get_object();
}

std::int64_t mailbox_count(const OmsdProcess& omsd, std::string_view user) {
  return int_of(obj_of(user_info(omsd, user), "mailbox"), "count");
}

void wait_for_mailbox_count(const OmsdProcess& omsd, std::string_view user, std::int64_t n,
                            std::chrono::milliseconds timeout) {
  std::int64_t last = -1;
  const bool ok = wait_until(
      [&] {
        const HttpResult r = omsd.admin().get("/v1/users/" + std::string(user));
        if (r.status != 200 || !r.json.is_object()) return false;
        const auto* mb = r.json.get_object().if_contains("mailbox");
        if (mb == nullptr || !mb->is_object()) return false;
        last = int_of(mb->get_object(), "count");
        return last == n;
      },
      timeout, std::chrono::milliseconds(10));
  CHECK_MESSAGE(ok, "mailbox of " << user << " did not reach " << n << " (last: " << last << ")");
}

std::vector<std::string> ids_of(const std::vector<Json>& frames) {
  std::vector<std::string> out;
  for (const auto& f : frames) out.push_back(str_of(f, "id"));
  return out;
}

std::vector<std::string> bodies_of(const std::vector<Json>& frames) {
  std::vector<std::string> out;
  for (const auto& f : frames) out.push_back(str_of(f, "body"));
  return out;
}

}  // namespace oms::test

namespace oms::test {

void wait_for_presence(const OmsdProcess& omsd, std::string_view user, std::string_view state,
                       std::chrono::milliseconds timeout) {
  std::string last;
  const bool ok = wait_until(
      [&] {
        const HttpResult r = omsd.admin().get("/v1/users/" + std::string(user));
        if (r.status != 200 || !r.json.is_object()) return false;
        const auto* p = r.json.get_object().if_contains("presence");
        last = p != nullptr && p->is_string() ? std::string(p->get_string()) : to_text(r.json);
        return last == state;
      },
      timeout, std::chrono::milliseconds(10));
  CHECK_MESSAGE(ok, "presence of " << user << " did not become " << state << " (last: " << last
                                   << ")");
}

std::map<std::string, std::int64_t> from_counts(const boost::json::array& from) {
  std::map<std::string, std::int64_t> out;
  for (const auto& v : from) {
    if (v.is_object()) {
      out[str_of(v.get_object(), "user")] += int_of(v.get_object(), "count");
    } else if (v.is_string()) {
      out[std::string(v.get_string())] += 0;  // a bare user id: no count given
    } else {
      throw TestError("unexpected entry in a from list: " + to_text(v));
    }
  }
  return out;
}

const boost::json::value* find_key(const boost::json::value& v, std::string_view key) {
  if (v.is_object()) {
    if (const auto* hit = v.get_object().if_contains(key)) return hit;
    for (const auto& kv : v.get_object())
      if (const auto* hit = find_key(kv.value(), key)) return hit;
  } else if (v.is_array()) {
    for (const auto& e : v.get_array())
      if (const auto* hit = find_key(e, key)) return hit;
  }
  return nullptr;
}

CommandResult omsctl(const OmsdProcess& omsd, const std::vector<std::string>& args, bool json) {
  std::vector<std::string> argv = {omsctl_binary_path(), "--admin", omsd.admin_url(), "--data-dir",
                                   omsd.data_dir().string()};
  if (json) argv.push_back("--json");
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

std::string describe(const CommandResult& r) {
  return "exit " + std::to_string(r.exit_code) + (r.timed_out ? " (timed out)" : "") +
         "\nstdout: " + r.out + "\nstderr: " + r.err;
}

double metric(const OmsdProcess& omsd, const std::string& sample) {
  const HttpResult r = omsd.admin().get("/metrics");
  OMS_CHECK_HTTP(r, 200);
  std::istringstream in(r.raw);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(sample + " ", 0) == 0) return std::stod(line.substr(sample.size() + 1));
  throw TestError("no sample " + sample + " in /metrics");
}

}  // namespace oms::test
