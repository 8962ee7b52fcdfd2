#include "bms_battery.hpp"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace moat::bms {

using namespace battery;

namespace {

double unix_now()
{
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

} // namespace

std::string default_work_path(const std::string& config_file, const std::string& app)
{
    const auto dir = std::filesystem::path(config_file).parent_path();
    return (dir / ("moat-bms-" + app + ".work")).string();
}

BmsBattery::BmsBattery(Loop& loop, Options options, std::string work_path, BatteryService& service, Logger log)
    : loop_(loop), opt_(std::move(options)), work_path_(std::move(work_path)), service_(service), log_(std::move(log))
{
}

void BmsBattery::configure(const BatteryConfig& config)
{
    const auto now = loop_.clock().now();
    if (model_ && model_->config().n == config.n) {
        model_->set_config(config);
    } else {
        std::optional<SavedWork> carry = saved_;
        if (model_ && model_->work()) carry = SavedWork{*model_->work(), unix_now()};
        if (model_) log_.info("the battery now has {} cells (was {}): a new model", config.n, model_->config().n);
        model_.emplace(config, opt_);
        model_->restore_work(carry, unix_now());
        saved_.reset();
        balance_threshold.assign(std::size_t(config.n), std::nullopt);
        balance_forced.assign(std::size_t(config.n), false);
        balance_pwm.assign(std::size_t(config.n), std::nullopt);
    }
    chores(now);
}

void BmsBattery::with_model(const std::function<void(Battery&, TimePoint)>& fn)
{
    if (!model_) return;
    const auto now = loop_.clock().now();
    fn(*model_, now);
    chores(now);
}

void BmsBattery::link_down(const std::string& why)
{
    with_model([&](Battery& b, TimePoint now) { b.link_down(now, why); });
}

void BmsBattery::chores(TimePoint now)
{
    if (!model_) return;
    Battery& b = *model_;
    if (b.take_relay_off_request()) request_relay(false);
    for (auto& l : b.take_log()) {
        if (l.level == LogLine::Level::error) log_.error("{}", l.text);
        else if (l.level == LogLine::Level::warning) log_.warning("{}", l.text);
        else log_.info("{}", l.text);
    }
    service_.publish(b.outputs(), &b.config(), b.work());
    deadline_.reset();
    if (auto at = b.next_deadline(now))
        deadline_ = Timer(loop_.clock(), *at, [this] { with_model([](Battery& m, TimePoint t) { m.tick(t); }); });
    if (!ready.is_set() && b.ready() && !b.outputs().safe) ready.set();
}

void BmsBattery::load_work()
{
    std::ifstream in(work_path_);
    if (!in) return;  // none yet: seeded from the cells
    std::stringstream text;
    text << in.rdbuf();
    saved_ = parse_work(text.str());
    if (saved_) {
        log_.info("energy record read from {}", work_path_);
        return;
    }
    const std::string aside = work_path_ + ".damaged";
    std::error_code ec;
    std::filesystem::rename(work_path_, aside, ec);
    log_.error("{}: not an energy record (kept as {}{}); starting fresh", work_path_, aside,
               ec ? ": rename failed: " + ec.message() : "");
}

void BmsBattery::save_work()
{
    if (!model_ || !model_->work()) return;
    const std::string err = write_file_atomically(work_path_, serialize_work(*model_->work(), unix_now()));
    if (!err.empty()) log_.warning("energy record not saved: {}", err);
}

} // namespace moat::bms
