#include "moat_bms_paths.hpp"

#include <fmt/format.h>

#include "sim_commands.hpp"

namespace moat::sim {

namespace {

/// Writable fault path → the command word of sim_commands.
struct FaultPath {
    const char* path;
    const char* command;
    Value initial;
};
const FaultPath fault_paths[] = {
    {"/Sim/MoatBms/Mute", "mute", 0},             {"/Sim/MoatBms/Dead", "dead", 0},
    {"/Sim/MoatBms/InvalidMsgpack", "invalid", 0}, {"/Sim/MoatBms/DropNth", "drop_nth", 0},
    {"/Sim/MoatBms/DropProbability", "drop_p", 0.0}, {"/Sim/MoatBms/Seen", "seen", 1},
    {"/Sim/MoatBms/Garbage", "garbage", 0},       {"/Sim/MoatBms/Truncate", "truncate", 0},
    {"/Sim/MoatBms/Duplicate", "duplicate", 0},   {"/Sim/MoatBms/Reorder", "reorder", 0},
    {"/Sim/MoatBms/Flood", "flood", 0},           {"/Sim/MoatBms/Modules", "modules", Value()},
    {"/Sim/MoatBms/Current", "current", 0.0},     {"/Sim/MoatBms/LoseWork", "lose_work", 0},
    {"/Sim/MoatBms/OmitMplexCfg", "omit_mplex_cfg", 0}, {"/Sim/MoatBms/VoltageGain", "u_gain", 1.0},
};

/// Per-cell writable paths: suffix → command word (the cell index goes first).
const std::pair<const char*, const char*> cell_paths[] = {
    {"Voltage", "voltage"}, {"VoltageRaw", "vraw"}, {"TempRaw", "traw"}};

} // namespace

MoatBmsPaths::MoatBmsPaths(Loop& loop, const std::string& instance, const std::string& bus_spec, int modules, Logger log)
    : service_(loop, name_for(instance), bus_spec, log), log_(std::move(log)), modules_(modules)
{
    service_.set_device(false);
    service_.set_write_log_level(LogLevel::debug);
    auto writeable = [] { return ItemOptions().writeable(); };
    for (const auto& f : fault_paths)
        service_.add(f.path, f.initial, writeable().report_equal_writes(std::string_view(f.command) == "flood"));
    service_.set("/Sim/MoatBms/Modules", modules_);
    // Actions: each write acts, also a repeated one.
    service_.add("/Sim/MoatBms/Eof", 0, writeable().report_equal_writes(true));
    service_.add("/Sim/MoatBms/Reset", 0, writeable().type(ValueType::integer).report_equal_writes(true));
    for (int i = 0; i < modules_; ++i)
        for (const auto& [suffix, cmd] : cell_paths)
            service_.add(fmt::format("/Sim/MoatBms/Cell/{}/{}", i, suffix), Value(), writeable());
    for (int i = 0; i < modules_; ++i)  // what balancing did to the module, for tests and a curious user
        for (const char* suffix : {"BalanceLevelRaw", "Bypass"})
            service_.add(fmt::format("/Sim/MoatBms/Cell/{}/{}", i, suffix), Value());
    for (const char* p : {"/Sim/MoatBms/Connected", "/Sim/MoatBms/Pty", "/Sim/MoatBms/Relay", "/Sim/MoatBms/Forced",
                          "/Sim/MoatBms/RelayChanges", "/Sim/MoatBms/LastRelayChange", "/Sim/MoatBms/RlyCalls",
                          "/Sim/MoatBms/Generation", "/Sim/MoatBms/Requests", "/Sim/MoatBms/DecodeErrors",
                          "/Sim/MoatBms/Ring/Packets", "/Sim/MoatBms/Ring/Dropped"})
        service_.add(p, Value());
    for (int c = 0; c < 16; ++c) service_.add(fmt::format("/Sim/MoatBms/Ring/Command/{}", c), Value());
    service_.on_write([this](const Write& w) { written(w); });
}

std::string MoatBmsPaths::name_for(const std::string& instance)
{
    std::string element = instance.empty() ? "_" : instance;
    for (char& c : element)
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) c = '_';
    if (element[0] >= '0' && element[0] <= '9') element = "_" + element;
    return "org.m_o_a_t.sim." + element;
}

Task<void> MoatBmsPaths::start()
{
    co_await service_.start();
    refresh();
}

void MoatBmsPaths::attach(bms::sim::SimDevice* device, const std::string& pty)
{
    device_ = device;
    if (device_) {
        // A new controller starts without the faults: apply what the paths say.
        for (const auto& f : fault_paths) {
            const Value& v = service_.at(f.path).value();
            if (v.is_number() && !(v == f.initial))
                bms::sim::apply_command(*device_, fmt::format("{} {}", f.command, *v.as_number()));
        }
    }
    service_.set("/Sim/MoatBms/Pty", device ? Value(pty) : Value());
    refresh();
}

void MoatBmsPaths::written(const Write& w)
{
    if (!w.value.is_number()) return;
    if (!w.changed && w.path != "/Sim/MoatBms/Flood" && w.path != "/Sim/MoatBms/Eof" && w.path != "/Sim/MoatBms/Reset")
        return;
    const double v = *w.value.as_number();
    std::string line;
    if (w.path == "/Sim/MoatBms/Eof") line = v != 0 ? "eof" : "";
    else if (w.path == "/Sim/MoatBms/Reset") line = fmt::format("reset {}", v);
    for (const auto& f : fault_paths)
        if (w.path == f.path) line = fmt::format("{} {}", f.command, v);
    int cell = -1;
    char suffix[16] = {};
    if (line.empty() && std::sscanf(w.path.c_str(), "/Sim/MoatBms/Cell/%d/%15s", &cell, suffix) == 2)
        for (const auto& [s, cmd] : cell_paths)
            if (std::string_view(suffix) == s) line = fmt::format("{} {} {}", cmd, cell, v);
    if (share_ && std::string_view(suffix) == "Voltage" && cell >= 0 && cell < modules_) {
        if (offsets_.size() <= std::size_t(cell)) offsets_.resize(std::size_t(cell) + 1, 0.0);
        offsets_[std::size_t(cell)] = v - *share_;
    }
    if (line.empty() || !device_) return;
    const std::string answer = bms::sim::apply_command(*device_, line);
    if (answer == "reopen") {
        log_.info("{} = {}: a new pty and controller", w.path, v);
        if (reopen) reopen->set();
        return;
    }
    if (answer != "ok") log_.warning("{} = {}: {}", w.path, v, answer);
    refresh();
}

void MoatBmsPaths::set_pack_current(double amps)
{
    if (device_) device_->controller().pack_current = amps;
}

void MoatBmsPaths::follow_pack_voltage(double volts)
{
    if (!device_) return;
    auto& modules = device_->controller().ring().modules();
    if (modules.empty()) return;
    share_ = volts / double(modules.size());
    for (std::size_t i = 0; i < modules.size(); ++i)
        modules[i].voltage = *share_ + (i < offsets_.size() ? offsets_[i] : 0.0);
}

std::optional<bool> MoatBmsPaths::relay() const
{
    if (!device_) return std::nullopt;
    return device_->controller().relay();
}

void MoatBmsPaths::refresh()
{
    auto batch = service_.batch();
    auto count = [](std::uint64_t n) { return Value(static_cast<std::int64_t>(n)); };
    service_.set("/Sim/MoatBms/Connected", device_ ? 1 : 0);
    if (!device_) return;
    auto& ctl = device_->controller();
    service_.set("/Sim/MoatBms/Relay", ctl.relay() ? 1 : 0);
    service_.set("/Sim/MoatBms/Forced", ctl.forced());
    service_.set("/Sim/MoatBms/RelayChanges", count(ctl.relay_history().size()));
    if (!ctl.relay_history().empty()) {
        const auto& e = ctl.relay_history().back();
        service_.set("/Sim/MoatBms/LastRelayChange", std::string(e.on ? "on: " : "off: ") + e.why);
    }
    service_.set("/Sim/MoatBms/RlyCalls", ctl.rly_calls());
    service_.set("/Sim/MoatBms/Generation", ctl.generation());
    service_.set("/Sim/MoatBms/Requests", count(ctl.requests().size()));
    service_.set("/Sim/MoatBms/DecodeErrors", count(device_->decode_errors()));
    const auto& counters = ctl.ring().counters();
    service_.set("/Sim/MoatBms/Ring/Packets", count(counters.packets));
    service_.set("/Sim/MoatBms/Ring/Dropped", count(counters.dropped));
    for (int c = 0; c < 16; ++c) service_.set(fmt::format("/Sim/MoatBms/Ring/Command/{}", c), count(counters.per_command[c]));
    auto& modules = ctl.ring().modules();
    for (int i = 0; i < modules_; ++i) {
        const bool here = i < int(modules.size());
        const auto* m = here ? &modules[std::size_t(i)] : nullptr;
        service_.set(fmt::format("/Sim/MoatBms/Cell/{}/Voltage", i), m ? Value(m->voltage) : Value());
        service_.set(fmt::format("/Sim/MoatBms/Cell/{}/BalanceLevelRaw", i), m ? Value(int(m->level_raw)) : Value());
        service_.set(fmt::format("/Sim/MoatBms/Cell/{}/Bypass", i), m ? Value(m->bypass ? 1 : 0) : Value());
    }
}

} // namespace moat::sim
