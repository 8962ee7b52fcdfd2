#include "patches_command.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <dlfcn.h>
#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "accepted_versions.hpp"
#include "patch_engine.hpp"
#include "patch_files.hpp"
#include "patch_manifest.hpp"
#include "sha256.hpp"

namespace moat::guard {

namespace {

namespace fs = std::filesystem;

struct PatchOptions {
    std::string action;
    std::vector<std::string> names;
    fs::path root = "/";
    std::vector<fs::path> manifest_dirs;
    std::optional<fs::path> state_dir;
    std::vector<std::string> svc{"svc"};
    std::vector<std::string> remount;  ///< empty: `mount -o remount,rw|ro /`
};

/// A patch that cannot be handled now; the message says why and that nothing changed.
class Refused : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Where the installed manifests are: <prefix>/share/moat-victron/patches,
/// found from this plugin's own place (<prefix>/lib/moat-victron/plugins);
/// in the build tree the source tree's patches/.
std::vector<fs::path> default_manifest_dirs() {
    std::vector<fs::path> dirs;
    Dl_info info{};
    if (::dladdr(reinterpret_cast<void*>(&default_manifest_dirs), &info) && info.dli_fname)
        dirs.push_back(fs::path(info.dli_fname).parent_path() / MOAT_PATCHES_FROM_PLUGINS);
#ifdef MOAT_PATCHES_SOURCE_DIR
    dirs.emplace_back(MOAT_PATCHES_SOURCE_DIR);
#endif
    return dirs;
}

class PatchManager {
public:
    PatchManager(PatchOptions o, Logger& log)
        : o_(std::move(o)), log_(log), state_(o_.state_dir ? *o_.state_dir : o_.root / "data/moat-victron/patches"),
          accepted_(state_ / "accepted") {
        patches_ = load_manifests(o_.manifest_dirs);
    }

    int run() {
        std::vector<const Patch*> chosen = select();
        int rc = 0;
        if (o_.action == "status") return status(chosen);
        for (const Patch* p : chosen) {
            try {
                if (o_.action == "apply" || o_.action == "boot") apply(*p);
                else if (o_.action == "revert") revert(*p);
                else if (o_.action == "accept") accept(*p);
                else if (o_.action == "verify" && !verify(*p)) rc = 1;
                else if (o_.action == "diff" && !diff(*p)) rc = 1;
            } catch (const Refused& e) {
                if (o_.action == "boot") log_.warning("{}: skipped: {}", p->name, e.what());
                else {
                    log_.error("{}: {}", p->name, e.what());
                    rc = 1;
                }
            } catch (const std::exception& e) {  // FileError, PatchError
                log_.error("{}: {}; nothing changed", p->name, e.what());
                rc = 1;
            }
        }
        if (!restart()) rc = 1;
        return rc;
    }

private:
    /// The named patches; none named: every patch for status and verify, the enabled ones for boot.
    std::vector<const Patch*> select() {
        std::vector<const Patch*> out;
        if (o_.names.empty()) {
            if (o_.action == "apply" || o_.action == "revert" || o_.action == "accept")
                throw UsageError(fmt::format("{} needs the names of the patches (see 'patches status')", o_.action));
            auto on = enabled();
            for (const Patch& p : patches_)
                if (o_.action != "boot" || on.count(p.name)) out.push_back(&p);
            return out;
        }
        for (const std::string& n : o_.names) {
            auto it = std::find_if(patches_.begin(), patches_.end(), [&](const Patch& p) { return p.name == n; });
            if (it == patches_.end())
                throw UsageError(fmt::format("no patch '{}' (known: {})", n, names()));
            out.push_back(&*it);
        }
        return out;
    }

    std::string names() const {
        std::string s;
        for (const Patch& p : patches_) s += (s.empty() ? "" : ", ") + p.name;
        return s.empty() ? "none found" : s;
    }

    fs::path target_of(const Patch& p) const { return o_.root / p.target; }
    fs::path backup_of(const Patch& p) const { return state_ / "backup" / p.target; }
    fs::path enabled_file() const { return state_ / "enabled"; }

    std::set<std::string> enabled() const {
        std::set<std::string> out;
        if (auto text = read_file(enabled_file()))
            for (const std::string& w : split_command(*text)) out.insert(w);
        return out;
    }

    void set_enabled(const std::string& name, bool on) {
        auto now = enabled();
        if (on ? !now.insert(name).second : now.erase(name) == 0) return;
        std::string text;
        for (const std::string& n : now) text += n + "\n";
        write_file_atomic(enabled_file(), text);
    }

    std::string venus_version() const {
        auto v = read_file(o_.root / "opt/victronenergy/version");
        if (!v) return "unknown";
        std::string line = v->substr(0, v->find('\n'));
        return line.empty() ? "unknown" : line;
    }

    /// Listed in the manifest, or accepted on this device after a review.
    bool known(const Patch& p, const std::string& sha256) const {
        return p.knows(sha256) || accepted_.has(p.name, sha256);
    }

    /// The patches on the same file, sorted by name (the order their edits are made in).
    std::vector<const Patch*> same_target(const Patch& p) const {
        std::vector<const Patch*> out;
        for (const Patch& q : patches_)
            if (q.target == p.target) out.push_back(&q);
        return out;
    }

    struct TargetState {
        std::string current, pristine;
        bool backup_valid = false;  ///< the backup holds `pristine`
        std::vector<const Patch*> applied;
        std::string pristine_sha;
    };

    /// The target and what of ours it holds. `review` (diff, accept): a file
    /// that is neither ours nor known is taken as it is, the unpatched
    /// candidate a firmware update brought, to be looked at.
    TargetState inspect(const Patch& p, bool review = false) const {
        const fs::path target = target_of(p);
        auto current = read_file(target);
        if (!current) throw Refused(fmt::format("{} does not exist (is this a GX with dbus-systemcalc-py?)", target.string()));
        TargetState st;
        st.current = *current;
        auto candidates = same_target(p);
        if (auto backup = read_file(backup_of(p))) {
            if (auto subset = applied_subset(*backup, *current, candidates)) {
                st.pristine = *backup;
                st.backup_valid = true;
                st.applied = *subset;
            } else if (std::any_of(candidates.begin(), candidates.end(),
                                   [&](auto* q) { return known(*q, sha256_hex(*current)); })) {
                // A firmware update brought a fresh, known copy: the old backup no longer applies.
                log_.warning("{}: {} is an unpatched known version again (a firmware update?); its old backup {} is "
                             "replaced when a patch is applied",
                             p.name, target.string(), backup_of(p).string());
                st.pristine = *current;
            } else if (review) {
                log_.warning("{}: {} is not what our patches made of the copy in {}: shown as a new unpatched file "
                             "(a firmware update?)",
                             p.name, target.string(), backup_of(p).string());
                st.pristine = *current;
            } else
                throw Refused(fmt::format("{} (sha256 {}) is neither the copy in {} with some of our patches nor a "
                                          "known version: changed by someone else or a firmware update (review it "
                                          "with 'moat-victron patches diff {}'); nothing changed",
                                          target.string(), sha256_hex(*current), backup_of(p).string(), p.name));
        } else
            st.pristine = *current;
        st.pristine_sha = sha256_hex(st.pristine);
        return st;
    }

    static bool has(const std::vector<const Patch*>& v, const Patch& p) { return std::find(v.begin(), v.end(), &p) != v.end(); }

    std::string unknown_version(const Patch& p, const TargetState& st) const {
        std::string known;
        for (const KnownVersion& k : p.known) known += fmt::format("{}{} ({})", known.empty() ? "" : ", ", k.label, k.sha256.substr(0, 12));
        return fmt::format("{} (Venus {}, sha256 {}) is not a version this patch knows ({}); not patched. Review "
                           "the change with 'moat-victron patches diff {}'; if it is right for this file, 'moat-victron "
                           "patches accept {}' lets apply use it",
                           target_of(p).string(), venus_version(), st.pristine_sha, known.empty() ? "none listed" : known,
                           p.name, p.name);
    }

    /// Write the target's new text; the backup first when there is none.
    void replace_target(const Patch& p, const TargetState& st, const std::string& text, bool drop_backup) {
        const fs::path target = target_of(p);
        {
            WritableScope writable(o_.remount, target.parent_path());
            if (!st.backup_valid) write_file_atomic(backup_of(p), st.pristine);
            write_file_atomic(target, text);
            auto back = read_file(target);
            if (!back || sha256_hex(*back) != sha256_hex(text)) {
                write_file_atomic(target, st.current);
                throw FileError(fmt::format("{} does not read back as written; the previous content was restored",
                                            target.string()));
            }
            if (!writable.restore()) log_.warning("{}: could not make it read-only again", target.parent_path().string());
        }
        if (drop_backup) fs::remove(backup_of(p));
        if (!p.service.empty()) restart_.insert(p.service);
    }

    void apply(const Patch& p) {
        TargetState st = inspect(p);
        if (has(st.applied, p)) {
            fmt::print("{}: already applied to {}\n", p.name, target_of(p).string());
            set_enabled(p.name, true);
            return;
        }
        if (!known(p, st.pristine_sha)) {
            if (!st.backup_valid && looks_applied(p, st.current))
                throw Refused(fmt::format("{} looks patched already, but its backup {} is missing; not touched",
                                          target_of(p).string(), backup_of(p).string()));
            throw Refused(unknown_version(p, st));
        }
        std::vector<const Patch*> want = st.applied;
        want.push_back(&p);
        std::sort(want.begin(), want.end(), [](auto* a, auto* b) { return a->name < b->name; });
        const std::string text = apply_edits(st.pristine, want);
        replace_target(p, st, text, false);
        set_enabled(p.name, true);
        fmt::print("{}: applied to {} (sha256 {} -> {})\n", p.name, target_of(p).string(), sha256_hex(st.current),
                   sha256_hex(text));
    }

    void revert(const Patch& p) {
        TargetState st = inspect(p);
        if (!has(st.applied, p)) {
            if (!st.backup_valid && looks_applied(p, st.current))
                throw Refused(fmt::format("{} looks patched, but the backup {} is missing: the exact original cannot be "
                                          "restored; nothing changed",
                                          target_of(p).string(), backup_of(p).string()));
            fmt::print("{}: not applied to {}\n", p.name, target_of(p).string());
            set_enabled(p.name, false);
            return;
        }
        std::vector<const Patch*> keep;
        for (const Patch* q : st.applied)
            if (q != &p) keep.push_back(q);
        const std::string text = keep.empty() ? st.pristine : apply_edits(st.pristine, keep);
        replace_target(p, st, text, keep.empty());
        set_enabled(p.name, false);
        fmt::print("{}: reverted {} (sha256 {} -> {})\n", p.name, target_of(p).string(), sha256_hex(st.current),
                   sha256_hex(text));
    }

    bool verify(const Patch& p) {
        TargetState st = inspect(p);
        if (!has(st.applied, p)) {
            fmt::print("{}: NOT applied to {} (sha256 {})\n", p.name, target_of(p).string(), sha256_hex(st.current));
            return false;
        }
        const std::string expected = sha256_hex(apply_edits(st.pristine, st.applied));
        const bool ok = expected == sha256_hex(st.current) && known(p, st.pristine_sha);
        fmt::print("{}: {} {} (sha256 {}, expected {}; unpatched {} {})\n", p.name, ok ? "applied and intact in" : "NOT intact in",
                   target_of(p).string(), sha256_hex(st.current), expected, st.pristine_sha,
                   version_word(p, st.pristine_sha));
        return ok;
    }

    std::string version_word(const Patch& p, const std::string& sha) const {
        return p.knows(sha) ? "is a known version" : accepted_.has(p.name, sha) ? "is a version accepted on this device"
                                                                                : "is NOT a known version";
    }

    /// Show what apply would change in the unpatched target; false when the edits do not fit.
    bool diff(const Patch& p) {
        TargetState st = inspect(p, true);
        fmt::print("{}: {} (Venus {}, sha256 {}; the unpatched file {})\n", p.name, target_of(p).string(),
                   venus_version(), st.pristine_sha, version_word(p, st.pristine_sha));
        if (has(st.applied, p)) fmt::print("{}: applied; the unpatched file is kept in {}\n", p.name, backup_of(p).string());
        const EditListing l = list_edits(st.pristine, p);
        fmt::print("{}", l.text);
        if (!l.fits) log_.error("{}: its edits do not fit {}: this patch cannot be applied to it", p.name, target_of(p).string());
        return l.fits;
    }

    /// Vouch for the unpatched target on this device, after a review with diff.
    void accept(const Patch& p) {
        TargetState st = inspect(p, true);
        if (known(p, st.pristine_sha)) {
            fmt::print("{}: {} (sha256 {}) {} already\n", p.name, target_of(p).string(), st.pristine_sha,
                       version_word(p, st.pristine_sha));
            return;
        }
        if (!list_edits(st.pristine, p).fits)
            throw Refused(fmt::format("the edits do not fit {} (sha256 {}; see 'moat-victron patches diff {}'); not "
                                      "accepted",
                                      target_of(p).string(), st.pristine_sha, p.name));
        const std::chrono::year_month_day today{std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now())};
        accepted_.add(p.name, st.pristine_sha,
                      fmt::format("accepted {}-{:02}-{:02} for Venus {}", int(today.year()), unsigned(today.month()),
                                  unsigned(today.day()), venus_version()));
        fmt::print("{}: accepted {} (sha256 {}) in {}; 'moat-victron patches apply {}' applies it\n", p.name,
                   target_of(p).string(), st.pristine_sha, accepted_.file().string(), p.name);
    }

    int status(const std::vector<const Patch*>& chosen) {
        auto on = enabled();
        fmt::print("Venus {} under {}; backups in {}\n", venus_version(), o_.root.string(), (state_ / "backup").string());
        for (const Patch* p : chosen) {
            std::string state;
            try {
                TargetState st = inspect(*p);
                state = has(st.applied, *p)              ? "applied"
                        : known(*p, st.pristine_sha)     ? "not applied (known version)"
                        : looks_applied(*p, st.current) ? "looks applied, but no backup"
                                                         : fmt::format("not applicable: unknown version (sha256 {})", st.pristine_sha);
            } catch (const std::exception& e) {
                state = e.what();
            }
            fmt::print("{:<14} {:<11} {:<8} {}\n  {}\n", p->name, p->recommended ? "recommended" : "optional",
                       on.count(p->name) ? "enabled" : "-", state, p->title);
        }
        return 0;
    }

    /// svc -t for every service whose files changed.
    bool restart() {
        bool ok = true;
        for (const std::string& service : restart_) {
            auto argv = o_.svc;
            argv.push_back("-t");
            argv.push_back((o_.root / fs::path(service).relative_path()).string());
            int rc = run_command(argv);
            if (rc == 0) fmt::print("restarted {}\n", argv.back());
            else {
                log_.error("'{}' failed (exit {}): restart {} by hand for the change to take effect", fmt::join(argv, " "),
                           rc, argv.back());
                ok = false;
            }
        }
        return ok;
    }

    PatchOptions o_;
    Logger& log_;
    fs::path state_;
    AcceptedVersions accepted_;
    std::vector<Patch> patches_;
    std::set<std::string> restart_;
};

std::vector<fs::path> split_dirs(const std::string& s) {
    std::vector<fs::path> out;
    std::size_t start = 0;
    for (std::size_t colon; (colon = s.find(':', start)) != std::string::npos; start = colon + 1)
        if (colon > start) out.emplace_back(s.substr(start, colon - start));
    if (start < s.size()) out.emplace_back(s.substr(start));
    return out;
}

CommandTask parse(const std::vector<std::string>& args) {
    PatchOptions o;
    if (const char* env = std::getenv("MOAT_PATCH_DIR")) o.manifest_dirs = split_dirs(env);
    if (const char* env = std::getenv("MOAT_SVC")) o.svc = split_command(env);
    if (const char* env = std::getenv("MOAT_PATCH_REMOUNT")) o.remount = split_command(env);
    std::vector<fs::path> given_dirs;
    ArgReader a(args);
    while (a.next()) {
        if (a.is("--root")) o.root = a.value();
        else if (a.is("--manifests")) given_dirs.emplace_back(a.value());
        else if (a.is("--state-dir")) o.state_dir = fs::path(a.value());
        else if (a.is("--svc")) o.svc = split_command(a.value());
        else if (a.is("--remount")) o.remount = split_command(a.value());
        else if (a.raw().starts_with("-")) throw UsageError(a.unknown());
        else if (o.action.empty()) o.action = a.raw();
        else o.names.push_back(a.raw());
    }
    static const std::set<std::string> actions{"status", "diff", "accept", "apply", "verify", "revert", "boot"};
    if (!actions.count(o.action))
        throw UsageError(o.action.empty()
                             ? "which action? status, diff, accept, apply, verify, revert or boot"
                             : fmt::format("unknown action '{}' (status, diff, accept, apply, verify, revert, boot)", o.action));
    if (o.action == "boot" && !o.names.empty()) throw UsageError("boot takes no names: it re-applies the enabled patches");
    if (o.svc.empty()) throw UsageError("--svc needs a command");
    if (!given_dirs.empty()) o.manifest_dirs = given_dirs;
    if (o.manifest_dirs.empty()) o.manifest_dirs = default_manifest_dirs();
    return [o](CommandContext& ctx) -> Task<int> {
        int rc = 1;
        try {
            PatchManager m(o, ctx.log);
            rc = m.run();
        } catch (const UsageError& e) {
            ctx.log.error("{}", e.what());
            rc = 2;
        } catch (const std::exception& e) {  // ManifestError, FileError
            ctx.log.error("{}; nothing changed", e.what());
            rc = 1;
        }
        co_return rc;
    };
}

} // namespace

const ClientCommand patches_command{
    "patches",
    "apply, verify or revert the opt-in patches to Victron's dbus-systemcalc-py",
    "Usage: moat-victron patches status|diff|accept|apply|verify|revert|boot [NAME...] [OPTIONS]\n\n"
    "  status                 every patch: recommended or optional, enabled, applied, the target's version\n"
    "  diff [NAME...]         show what the patch changes in this GX's file (line, old and new lines)\n"
    "  accept NAME...         after reviewing diff: trust this GX's version of the target for the patch\n"
    "                         (its edits must fit; recorded in the state directory's 'accepted')\n"
    "  apply NAME...          patch the target (only a known or accepted version; backup first; all or nothing)\n"
    "  verify [NAME...]       check that the target holds exactly what the patches make of the backup\n"
    "  revert NAME...         restore the target from the backup (exact bytes once no patch is left)\n"
    "  boot                   re-apply the enabled patches (after a firmware update); a version\n"
    "                         neither known nor accepted is logged and skipped, never patched\n"
    "Applied patches are enabled for boot; reverted ones disabled. The patched service is restarted\n"
    "(svc -t) only when a file changed. patches/README.md describes each patch.\n\n"
    "  --root DIR             the GX's root (default /)\n"
    "  --state-dir DIR        backups, the enabled list and the accepted versions\n"
    "                         (default ROOT/data/moat-victron/patches)\n"
    "  --manifests DIR        where the patch manifests are (repeatable; default: installed with\n"
    "                         moat-victron, or $MOAT_PATCH_DIR, colon-separated)\n"
    "  --svc COMMAND          the service restarter (default svc, or $MOAT_SVC); called as COMMAND -t DIR\n"
    "  --remount COMMAND      makes a read-only root writable: called as COMMAND rw|ro DIR (default,\n"
    "                         or $MOAT_PATCH_REMOUNT: mount -o remount,rw|ro /)\n",
    parse,
    false,  // needs_bus: files only, so it works at boot before (or without) the system bus
};

} // namespace moat::guard
