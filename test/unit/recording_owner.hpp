// A LoopOwner for tests: records every callback failure as "where: what".
#pragma once

#include "moat/loop.hpp"

#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace moat::test {

struct RecordingOwner final : LoopOwner {
    std::vector<std::string> failures;
    void callback_failed(std::exception_ptr e, const char* where) override {
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            failures.push_back(std::string(where) + ": " + x.what());
        }
    }
};

} // namespace moat::test
