// Backups (POST /v1/backup, protocol 4.4): named directories under the
// configured `[backup] dir`, readable by omsd's user only.
//
// Thread-safe (free functions on the file system).
#pragma once

#include <filesystem>
#include <string_view>

#include "common/status.h"

namespace oms::server {

// A backup name: 1-64 bytes of [A-Za-z0-9._-], not "." or "..". Nothing in
// it can leave the backup directory.
bool valid_backup_name(std::string_view name);

// Creates `dir` (and its parents) if missing and makes it mode 0700.
Status make_private_dir(const std::filesystem::path& dir);

// Makes every directory under `root` (and `root`) 0700 and every file 0600;
// symbolic links are not followed.
Status make_tree_private(const std::filesystem::path& root);

}  // namespace oms::server
