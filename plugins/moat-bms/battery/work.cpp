#include "work.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>

#include <fcntl.h>
#include <unistd.h>

namespace moat::bms::battery {

void clamp_work(WorkRecord& w, const BatteryConfig& c, double cell_min) {
    double cap = c.cap_cur;
    if (cell_min < c.cell.lim_min) {
        if (w.sum > 0) w.over_dis -= w.sum;
        w.sum = 0;
    } else if (w.sum < 0) {
        w.over_dis += -w.sum;
        w.sum = 0;
    }
    if (cell_min > c.cell.lim_max) {
        if (w.sum < cap) w.over_chg -= cap - w.sum;
        w.sum = cap;
    } else if (w.sum > cap) {
        w.over_chg += w.sum - cap;
        w.sum = cap;
    }
}

void add_work(WorkRecord& w, const BatteryConfig& c, double ws, double seconds, double cell_min) {
    if (ws > 0) {
        w.chg += ws;
        ws *= 1 - c.cap_loss;
    } else {
        w.dis += -ws;
    }
    w.t += seconds;
    w.sum += ws;
    clamp_work(w, c, cell_min);
}

double soc(const WorkRecord& w, const BatteryConfig& c, double cell_min) {
    const auto& k = c.cell;
    if (cell_min < k.lim_min) return 0.05 * std::max(0.0, (cell_min - k.ext_min) / (k.lim_min - k.ext_min));
    if (cell_min > k.lim_max) return 1 - 0.05 * std::max(0.0, (k.ext_max - cell_min) / (k.ext_max - k.lim_max));
    return 0.05 + 0.9 * std::clamp(w.sum / c.cap_cur, 0.0, 1.0);
}

std::optional<double> nominal_pack_volts(const BatteryConfig& c) {
    if (c.u_nom && *c.u_nom > 0) return *c.u_nom;
    if (c.cell.u_nom && *c.cell.u_nom > 0) return c.n * *c.cell.u_nom;
    return std::nullopt;
}

std::optional<double> installed_capacity_ah(const BatteryConfig& c) {
    auto u = nominal_pack_volts(c);
    if (!u) return std::nullopt;
    return c.cap_cur / 3600 / *u;
}

std::optional<double> consumed_ah(const WorkRecord& w, const BatteryConfig& c) {
    auto u = nominal_pack_volts(c);
    if (!u) return std::nullopt;
    return std::max(0.0, c.cap_cur - w.sum) / 3600 / *u;
}

Seed seed_work(const BatteryConfig& c, double cell_min) {
    Seed s;
    s.record.cfg = c.cap_cur;
    if (cell_min < c.cell.lim_min) s.record.sum = 0;
    else if (cell_min > c.cell.lim_max) s.record.sum = c.cap_cur;
    else s.record.sum = c.cap_cur / 2, s.anchored = false;
    return s;
}

std::string serialize_work(const WorkRecord& w, double saved_unix_s) {
    char buf[400];
    std::snprintf(buf, sizeof buf, "moat-bms-work 1 %.17g %.17g %.17g %.17g %.17g %.17g %.17g %.17g\n", saved_unix_s, w.sum, w.t, w.chg,
                  w.dis, w.over_chg, w.over_dis, w.cfg);
    return buf;
}

std::optional<SavedWork> parse_work(const std::string& text) {
    std::istringstream in(text);
    std::string magic;
    int version = 0;
    SavedWork s;
    auto& w = s.record;
    if (!(in >> magic >> version >> s.saved_unix_s >> w.sum >> w.t >> w.chg >> w.dis >> w.over_chg >> w.over_dis >> w.cfg)) return std::nullopt;
    std::string rest;
    if (magic != "moat-bms-work" || version != 1 || (in >> rest)) return std::nullopt;
    for (double v : {s.saved_unix_s, w.sum, w.t, w.chg, w.dis, w.over_chg, w.over_dis, w.cfg})
        if (!std::isfinite(v)) return std::nullopt;
    if (w.sum < 0 || w.t < 0 || w.chg < 0 || w.dis < 0 || w.cfg < 0) return std::nullopt;
    return s;
}

std::string write_file_atomically(const std::string& path, const std::string& text) {
    std::string tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return tmp + ": " + std::strerror(errno);
    std::size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            std::string err = tmp + ": " + std::strerror(errno);
            ::close(fd);
            ::unlink(tmp.c_str());
            return err;
        }
        done += std::size_t(n);
    }
    bool synced = ::fsync(fd) == 0;
    std::string err = synced ? "" : tmp + ": " + std::strerror(errno);
    if (::close(fd) != 0 && err.empty()) err = tmp + ": " + std::strerror(errno);
    if (err.empty() && ::rename(tmp.c_str(), path.c_str()) != 0) err = path + ": " + std::strerror(errno);
    if (!err.empty()) ::unlink(tmp.c_str());
    return err;
}

} // namespace moat::bms::battery
