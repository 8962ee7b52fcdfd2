// statusline: every `interval` seconds, the one-line status of spec
// statusline.md composed from the monitored services, written to the log,
// optionally to a file, and published as /StatusLine on D-Bus.
#include "aggregate.hpp"
#include "gather.hpp"
#include "line.hpp"
#include "line_file.hpp"
#include "extended.hpp"
#include "status_command.hpp"

#include <moat/plugin.hpp>
#include <moat/service.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace {

using namespace std::chrono;
namespace fs = std::filesystem;
namespace sl = moat::statusline;

moat::Duration seconds_key(const moat::Config& c, std::string_view key)
{
    return duration_cast<moat::Duration>(duration<double>(c.get_number(key)));
}

class StatusLine final : public moat::Plugin {
public:
    /// `moat-victron status` comes with this plugin.
    static std::span<const moat::ClientCommand* const> commands() {
        static const moat::ClientCommand* const list[] = {&moat::statusline::status_command};
        return list;
    }
    explicit StatusLine(moat::Context& ctx) : ctx_(ctx)
    {
        const moat::Config& c = ctx.config;
        interval_ = seconds_key(c, "interval");
        if (c.get_number("max_age") > 0)
            options_.max_age = seconds_key(c, "max_age");
        log_lines_ = c.get_bool("log");
        if (auto file = output_file(c)) {
            // The directory may appear later (a mount at boot): not a
            // configuration error, the host retries.
            std::error_code ec;
            const fs::path dir = fs::path(*file).parent_path();
            if (!fs::is_directory(dir.empty() ? fs::path(".") : dir, ec))
                throw std::runtime_error(
                    fmt::format("{}: the directory {} does not exist", c.where("file"), dir.string()));
            file_.emplace(*file);
        }
        service_name_ = c.get_string("service");
        format_ = *sl::parse_line_format(c.get_string("format"));
    }

    /// --check-config and each start: the same checks the constructor makes.
    static void validate(const moat::Config& c)
    {
        output_file(c);
        if (auto name = c.get_string("service"); !name.empty())
            c.claim("service", "the D-Bus name " + name);
    }

    /// The status file's path (relative to the configuration file), if any.
    static std::optional<std::string> output_file(const moat::Config& c)
    {
        auto file = c.get_string("file");
        if (file.empty())
            return std::nullopt;
        fs::path p(file);
        if (p.is_relative())
            p = fs::path(c.file()).parent_path() / p;
        p = p.lexically_normal();
        if (!p.has_filename())
            c.fail("file", "names a directory, not a file");
        return p.string();
    }

    moat::Task<void> run() override
    {
        sl::follow(ctx_.monitor);
        if (!service_name_.empty()) {
            service_ = std::make_unique<moat::Service>(ctx_.loop, service_name_, ctx_.bus_spec,
                                                       ctx_.log.child("dbus"));
            service_->add_mandatory(moat::DeviceInfo{
                .process_name = "moat-victron",
                .process_version = "statusline 1.0",
                .connection = "instance " + ctx_.instance,
                .device_instance = ctx_.config.get_int("device_instance"),
                .product_id = 0xFFFF,
                .product_name = "MoaT status line",
                .firmware_version = moat::Value(),
                .hardware_version = moat::Value(),
                .connected = 1,
            });
            line_item_ = &service_->add("/StatusLine", moat::Value(),
                                        moat::ItemOptions().description("the latest status line (UTF-8)"));
            co_await service_->start();
            ctx_.log.info("publishing {} /StatusLine", service_name_);
        }
        if (file_)
            ctx_.log.info("writing the latest line to {}", file_->path());

        // A fixed rate (§5 allows it): ticks at start + k·interval, skipping
        // ticks that a slow loop missed rather than bunching them up.
        auto& clock = ctx_.loop.clock();
        moat::TimePoint next = clock.now() + interval_;
        for (;;) {
            co_await moat::sleep_for(next - clock.now());
            tick();
            next += interval_;
            if (auto now = clock.now(); next <= now)
                next = now + interval_ - (now - next) % interval_;
        }
    }

    moat::Task<void> safe_state() override
    {
        // Nothing may present the last line as current once we stop.
        if (file_) {
            try {
                file_->remove();
            } catch (const std::exception& e) {
                ctx_.log.warning("{}", e.what());
            }
        }
        if (service_ && service_->started()) {
            line_item_->invalidate();
            co_await service_->stop();
        }
    }

private:
    void tick()
    {
        const sl::Snapshot snapshot = sl::gather(ctx_.monitor, options_);
        const sl::Aggregate totals = sl::aggregate(snapshot);
        std::string line = sl::format_line(totals);
        if (format_ == sl::LineFormat::extended)
            line = sl::extend_line(line, snapshot);
        if (const auto* why = std::get_if<sl::Incomplete>(&totals))
            ctx_.log.debug("incomplete: {}", why->message());
        // Identical lines back to back are summarised by the logger
        // ("... repeated N times"); the file and D-Bus get every tick.
        if (log_lines_)
            ctx_.log.info("{}", line);
        if (file_) {
            try {
                file_->write(line);
            } catch (const std::exception& e) {
                ctx_.log.warning("{}", e.what());
            }
        }
        if (line_item_)
            line_item_->set(line);
    }

    moat::Context& ctx_;
    moat::Duration interval_;
    sl::GatherOptions options_;
    bool log_lines_ = true;
    std::optional<sl::LineFile> file_;
    std::string service_name_;
    sl::LineFormat format_ = sl::LineFormat::original;
    std::unique_ptr<moat::Service> service_;
    moat::Item* line_item_ = nullptr;
};

const moat::ConfigKey keys[] = {
    {"interval", moat::KeyType::number, "1.0", "seconds between lines", 0.05, 3600},
    {"log", moat::KeyType::boolean, "true", "write every line to the log (identical lines are summarised)"},
    {"file", moat::KeyType::string, "\"\"",
     "a file that always holds the latest line, replaced atomically (\"\" = none; relative to the config file)"},
    {"max_age", moat::KeyType::number, "60.0",
     "a service none of whose read values was updated for this many seconds counts as frozen (0 = never)", 0,
     86400},
    {"service", moat::KeyType::string, "\"com.victronenergy.moat.statusline\"",
     "D-Bus name of the service that publishes /StatusLine (\"\" = do not publish)"},
    {"device_instance", moat::KeyType::integer, "0", "/DeviceInstance of that service (the MQTT topic's instance)",
     0, 65535},
    {"format", moat::KeyType::string, "\"original\"",
     "original: the original project's line, unchanged (scripts parse it); extended: followed by the grid power "
     "per phase and in total and the controller's mode and target",
     -moat::no_limit, moat::no_limit, "original|extended"},
};

} // namespace

MOAT_PLUGIN(StatusLine, "statusline", "1.0",
            "Composes the one-line system status every second: log, file and D-Bus /StatusLine", keys)
