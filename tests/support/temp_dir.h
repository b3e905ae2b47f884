// A unique temporary directory, removed with everything in it when the
// object is destroyed. Not thread-safe (one owner).
#pragma once

#include <filesystem>
#include <string_view>

namespace oms::test {

class TempDir {
 public:
  // Creates <temp_directory_path>/<prefix>-XXXXXX (mode 0700).
  explicit TempDir(std::string_view prefix = "oms-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace oms::test
