// The pure part of the patch manager: applying a set of patches' edits to
// the unpatched text of a file, and telling which of them a file holds.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "patch_manifest.hpp"

namespace moat::guard {

/// An edit that does not fit the text (its `find` is missing or not unique).
class PatchError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// `text` with the edits of `patches` applied, in the given order. Throws
/// PatchError naming the patch and the edit when a `find` does not occur
/// exactly once.
std::string apply_edits(std::string text, const std::vector<const Patch*>& patches);

/// Which of `candidates` (in their order) turn `pristine` into `current`;
/// nullopt when no combination does (the file was changed otherwise).
std::optional<std::vector<const Patch*>> applied_subset(const std::string& pristine, const std::string& current,
                                                        const std::vector<const Patch*>& candidates);

/// True when `text` holds every replacement of `p` and none of its originals
/// (used when the unpatched text is not known: no backup).
bool looks_applied(const Patch& p, const std::string& text);

/// What applying `p` to `text` would change, for people to review (`patches
/// diff`): each edit with the line it starts at, its old lines ("-") and new
/// lines ("+"), or why it does not fit. `fits` tells whether every edit's
/// text occurs exactly once.
struct EditListing {
    std::string text;
    bool fits = true;
};
EditListing list_edits(const std::string& text, const Patch& p);

} // namespace moat::guard
