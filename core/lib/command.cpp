// The SDK's command-line walker for client commands (moat/command.hpp).
#include "moat/command.hpp"

#include <fmt/format.h>

namespace moat {

bool ArgReader::next() {
    if (started_) ++i_;
    started_ = true;
    if (i_ >= args_.size()) return false;
    const std::string& a = args_[i_];
    inline_.reset();
    name_ = a;
    if (a.starts_with("--") && a.find('=') != std::string::npos) {
        name_ = a.substr(0, a.find('='));
        inline_ = a.substr(a.find('=') + 1);
    }
    return true;
}

std::string ArgReader::value() {
    if (inline_) return *inline_;
    if (i_ + 1 >= args_.size()) throw UsageError(fmt::format("{} needs a value", name_));
    return args_[++i_];
}

std::string ArgReader::unknown() const { return fmt::format("unknown option '{}'", args_[i_]); }

} // namespace moat
