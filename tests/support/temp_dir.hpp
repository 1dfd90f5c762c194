#pragma once

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <stdlib.h>

namespace tocsin::test {

// A unique scratch directory per test so parallel test runs never collide.
class temp_dir {
public:
  temp_dir() {
    auto templ = (std::filesystem::temp_directory_path() / "tocsin-test-XXXXXX")
                     .string();
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr)
      throw std::system_error(errno, std::generic_category(), "mkdtemp");
    path_ = buf.data();
  }

  ~temp_dir() {
    // Keeping the directory lets a developer inspect logs of a failed run.
    if (std::getenv("TOCSIN_KEEP_TEST_DIRS") != nullptr)
      return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }

  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::filesystem::path& path() const { return path_; }

private:
  std::filesystem::path path_;
};

} // namespace tocsin::test
