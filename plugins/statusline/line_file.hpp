// A file that always holds the latest status line, for scripts: every write
// goes to a temporary file beside it that is then renamed over it, so a
// reader sees either the previous line or the new one, never a mix.
#pragma once

#include <string>
#include <string_view>

namespace moat::statusline {

class LineFile {
public:
    /// `path` is used as given; the temporary file is `path` + ".tmp".
    explicit LineFile(std::string path) : path_(std::move(path)), temp_(path_ + ".tmp") {}

    const std::string& path() const { return path_; }

    /// Replace the file's content with `line` and a newline (0644; no fsync:
    /// the file is rewritten every tick, and on a GX it belongs on a RAM
    /// disk such as /run or /tmp). Throws std::system_error naming the file.
    void write(std::string_view line);
    /// Delete the file (and a left-over temporary file); a missing file is fine.
    /// Throws std::system_error for other failures.
    void remove();

private:
    std::string path_, temp_;
};

} // namespace moat::statusline
