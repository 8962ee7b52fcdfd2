#include "patch_engine.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace moat::guard {

namespace {
std::size_t occurrences(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}
} // namespace

std::string apply_edits(std::string text, const std::vector<const Patch*>& patches) {
    for (const Patch* p : patches)
        for (std::size_t i = 0; i < p->edits.size(); ++i) {
            const PatchEdit& e = p->edits[i];
            std::size_t n = occurrences(text, e.find);
            if (n != 1)
                throw PatchError(fmt::format("patch {}: edit {} of {}: the text to replace occurs {} times in {} "
                                             "(must be once)",
                                             p->name, i + 1, p->edits.size(), n, p->target));
            text.replace(text.find(e.find), e.find.size(), e.replace);
        }
    return text;
}

std::optional<std::vector<const Patch*>> applied_subset(const std::string& pristine, const std::string& current,
                                                        const std::vector<const Patch*>& candidates) {
    const std::size_t n = candidates.size();
    if (n > 10) return std::nullopt;  // never for real targets (one to three patches each)
    for (std::size_t mask = 0; mask < (std::size_t(1) << n); ++mask) {
        std::vector<const Patch*> subset;
        for (std::size_t i = 0; i < n; ++i)
            if (mask & (std::size_t(1) << i)) subset.push_back(candidates[i]);
        try {
            if (apply_edits(pristine, subset) == current) return subset;
        } catch (const PatchError&) {
        }
    }
    return std::nullopt;
}

bool looks_applied(const Patch& p, const std::string& text) {
    for (const PatchEdit& e : p.edits)
        if (text.find(e.replace) == std::string::npos || text.find(e.find) != std::string::npos) return false;
    return true;
}

namespace {
void prefixed_lines(std::string& out, char prefix, const std::string& block) {
    std::size_t start = 0;
    while (start < block.size()) {
        std::size_t end = block.find('\n', start);
        if (end == std::string::npos) end = block.size();
        out += prefix;
        out.append(block, start, end - start);
        out += '\n';
        start = end + 1;
    }
}
} // namespace

EditListing list_edits(const std::string& text, const Patch& p) {
    EditListing l;
    for (std::size_t i = 0; i < p.edits.size(); ++i) {
        const PatchEdit& e = p.edits[i];
        const std::size_t n = occurrences(text, e.find);
        if (n != 1) {
            l.fits = false;
            l.text += fmt::format("edit {} of {}: does not fit: the text to replace occurs {} times (must be once):\n",
                                  i + 1, p.edits.size(), n);
            prefixed_lines(l.text, '?', e.find);
            continue;
        }
        const std::size_t at = text.find(e.find);
        const auto line = 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n');
        l.text += fmt::format("edit {} of {} at line {}:\n", i + 1, p.edits.size(), line);
        prefixed_lines(l.text, '-', e.find);
        prefixed_lines(l.text, '+', e.replace);
    }
    return l;
}

} // namespace moat::guard
