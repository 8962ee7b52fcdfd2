#include "link_state_service.hpp"

namespace moat::bms {

LinkStateService::LinkStateService(Loop& loop, const std::string& instance, const std::string& bus_spec, Logger log)
    : service_(loop, name_for(instance), bus_spec, std::move(log))
{
    service_.set_device(false);  // no Venus device paths: not a Venus device service
    service_.set_write_log_level(LogLevel::debug);
    service_.add("/Link/Up", 0);
    service_.add("/Link/Reason", "not connected yet");
    service_.add("/Link/Session", 0);
    service_.add("/Link/Failures", 0);
    service_.add("/Link/DecodeErrors", 0);
    service_.add("/Link/ConsoleLines", 0);
}

std::string LinkStateService::name_for(const std::string& instance)
{
    std::string element = instance.empty() ? "_" : instance;
    for (char& c : element)
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) c = '_';
    if (element[0] >= '0' && element[0] <= '9') element = "_" + element;  // an element may not start with a digit
    return "org.m_o_a_t.bms." + element;
}

Task<void> LinkStateService::start()
{
    co_await service_.start();
}

void LinkStateService::publish(const LinkState& s)
{
    auto batch = service_.batch();  // one ItemsChanged per change of state
    auto count = [](std::uint64_t n) { return Value(static_cast<std::int64_t>(n)); };
    service_.set("/Link/Up", s.up ? 1 : 0);
    service_.set("/Link/Reason", s.up ? std::string() : s.reason);
    service_.set("/Link/Session", count(s.sessions));
    service_.set("/Link/Failures", count(s.failures));
    service_.set("/Link/DecodeErrors", count(s.decode_errors));
    service_.set("/Link/ConsoleLines", count(s.console_lines));
}

} // namespace moat::bms
