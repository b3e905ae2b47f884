#include "server/backup.h"

#include <system_error>

#include <fmt/format.h>

namespace oms::server {
namespace fs = std::filesystem;

namespace {

constexpr auto kDirMode = fs::perms::owner_all;                             // 0700
constexpr auto kFileMode = fs::perms::owner_read | fs::perms::owner_write;  // 0600

Status chmod(const fs::path& p, fs::perms mode) {
  std::error_code ec;
  fs::permissions(p, mode, fs::perm_options::replace | fs::perm_options::nofollow, ec);
  if (ec) return Status::io_error(fmt::format("chmod '{}': {}", p.string(), ec.message()));
  return Status::ok();
}

}  // namespace

bool valid_backup_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name == "." || name == "..") return false;
  for (char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Status make_private_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::io_error(fmt::format("cannot create '{}': {}", dir.string(), ec.message()));
  return chmod(dir, kDirMode);
}

Status make_tree_private(const fs::path& root) {
  if (Status s = chmod(root, kDirMode); !s) return s;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    const auto st = it->symlink_status(ec);
    if (ec) break;
    if (fs::is_symlink(st)) continue;
    // (Hard-linked files share their mode with the live store's: 0600 suits both.)
    if (Status s = chmod(it->path(), fs::is_directory(st) ? kDirMode : kFileMode); !s) return s;
  }
  if (ec) return Status::io_error(fmt::format("walking '{}': {}", root.string(), ec.message()));
  return Status::ok();
}

}  // namespace oms::server
