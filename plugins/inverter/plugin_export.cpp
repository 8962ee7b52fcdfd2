// The inverter plugin's exports (§16): GetState, the Venus items with their
// remote writes, and the control interface org.m_o_a_t.inv on /Control.
#include <fmt/format.h>

#include "control_interface.hpp"
#include "inverter_plugin.hpp"

namespace moat::inverter {
namespace {

constexpr const char* control_iface = control::interface;
constexpr const char* err_too_early = control::error_too_early;
constexpr const char* err_unknown = control::error_unknown;

/// A SetMode/SetModeParam argument as a parameter value; throws for strings etc.
ParamValue param_value(const Value& v, std::string_view name) {
    if (v.is_invalid()) return std::nullopt;
    if (auto n = v.as_number()) return *n;
    throw DBusError(control::error_invalid_value,
                    fmt::format("{}: expected a number, a boolean or None, not {}", name, kind_name(v)));
}

Value double_list(const std::vector<double>& v) {
    Value::List l;
    for (double x : v) l.emplace_back(x);
    return l;
}

Value limit_entry(const LimitEntry& e) {
    Value::Dict d;
    d["rule"] = std::string(to_string(e.rule));
    for (auto& [k, v] : e.values) d[k] = v;
    d["lim"] = e.lim;
    d["fix"] = e.fix;
    d["res"] = e.res;
    if (!e.step.empty()) d["step"] = double_list(e.step);
    return d;
}

Value cycle_report(const CycleReport& r) {
    Value::List limits;
    for (auto& e : r.limits) limits.push_back(limit_entry(e));
    Value::Dict d;
    d["init"] = r.init;
    d["limits"] = Value(std::move(limits));
    d["dest"] = r.dest;
    d["setpoint"] = r.setpoint;
    d["inv_phases"] = double_list(r.inv_phases);
    d["phases"] = double_list(r.phases);
    return d;
}

/// A refused mode change as the D-Bus error of §16.2.
DBusError dbus_error(const ModeChangeError& e) {
    using Kind = ModeChangeError::Kind;
    const char* name = e.kind == Kind::too_early           ? err_too_early
                       : e.kind == Kind::unknown_parameter ? control::error_unknown_parameter
                       : e.kind == Kind::invalid_value     ? control::error_invalid_value
                                                           : err_unknown;
    return DBusError(name, e.what());
}

} // namespace

// ---------------------------------------------------------------- export (§16)

Value InverterPlugin::state() {
    Value::Dict d;
    d["mode"] = Value::make_list({std::string(to_string(sup_.mode())), op_dict(sup_.op())});
    if (auto p = sup_.pending()) d["pending_mode"] = std::string(to_string(*p));
    if (report_) d["inverter"] = cycle_report(*report_);
    if (mode_report_) d[mode_report_key_] = *mode_report_;
    if (analyze_report_) d["analyze"] = Value(*analyze_report_);
    d["error"] = sup_.error().empty() ? Value() : Value(sup_.error());
    d["running"] = sup_.inputs_ok();
    // patches.md §5: the critical settings that are wrong (empty when none is).
    Value::Dict critical;
    for (auto& [path, v] : check_critical_settings({hub4_mode(), feed_in()}).wrong) critical[path] = v;
    d["critical_settings"] = Value(std::move(critical));
    const auto& low = watch_.low_battery();
    d["low_battery"] = low ? Value(*low) : Value();
    d["input_problem"] = watch_.input_problem().empty() ? Value() : Value(watch_.input_problem());
    d["safe_state"] = writer_.safe_state().empty() ? Value() : Value(writer_.safe_state());
    d["may_write"] = watch_.may_write();
    d["write_problem"] = watch_.write_problem().empty() ? Value() : Value(watch_.write_problem());
    d["fake"] = writer_.fake();
    d["written"] = double_list(writer_.last_written());
    d["i_batt_avg"] = i_batt_avg_;
    d["i_pv_max"] = ctl_.pv.limits().i_pv_max;
    d["pv_margin"] = ctl_.pv.limits().pv_margin;
    d["solar_p"] = solar_p_;
    std::string vb = vebus(), bat = battery();
    d["vebus"] = vb.empty() ? Value() : Value(vb);
    d["battery"] = bat.empty() ? Value() : Value(bat);
    if (auto left = sup_.lockout_left()) d["lockout"] = secs(*left);
    return d;
}

struct MainParam {
    const char* path;
    const char* param;
    const char* text;
};
const MainParam main_params[] = {
    {"/Power", "power", "%.0F W"},
    {"/Current", "current", "%.1F A"},
    {"/DestSoc", "dest_soc", "%.2F"},
    {"/Excess", "excess", "%.0F W"},
};

void InverterPlugin::build_service() {
    svc_ = std::make_unique<Service>(ctx_.loop, venus_service_name(ctx_.config), ctx_.bus_spec, ctx_.log.child("dbus"));
    // §16.3
    svc_->add_mandatory(DeviceInfo{.process_name = "moat-victron/inverter",
                                   .process_version = "0.1",
                                   .connection = "MoaT Inv",
                                   .device_instance = 1,
                                   .product_id = 123211,
                                   .product_name = "MoaT Inverter Controller",
                                   .firmware_version = "0.1",
                                   .hardware_version = Value(),
                                   .connected = 1});
    svc_->add("/Serial", "123457");
    auto mode_ok = [this](const Value& v) {
        if (!v.is_string()) return false;
        try {
            sup_.check_change(v.as_string(), {});
            return true;
        } catch (const ModeChangeError&) {
            return false;
        }
    };
    svc_->add("/Mode", std::string(to_string(sup_.target())),
              ItemOptions().writeable().type(ValueType::string).validator(mode_ok).description(
                  "the running mode: off idle p_grid p_inv i_batt soc remote analyze"));
    for (auto& mp : main_params) {
        std::string param = mp.param;
        auto ok = [this, param](const Value& v) {
            ParamValue pv;
            if (v.is_invalid()) pv = std::nullopt;
            else if (auto n = v.as_number()) pv = *n;
            else return false;
            return !sup_.check_param(param, pv).has_value();
        };
        svc_->add(mp.path, Value(), ItemOptions().writeable().type(ValueType::floating).validator(ok).text(mp.text));
    }
    svc_->add("/Error", "");
    svc_->add("/Status", "starting");
    for (int k = 1; k <= max_phases; ++k) svc_->add(fmt::format("/Setpoint/L{}", k), Value(), ItemOptions().text("%.0F W"));
    svc_->on_write([this](const Write& w) { on_remote_write(w); });
}

void InverterPlugin::on_remote_write(const Write& w) {
    ctx_.log.info("remote write {} by {}: {:r} -> {:r}", w.path, w.sender, w.old_value, w.value);
    try {
        if (w.path == "/Mode") sup_.change_mode(w.value.as_string(), {});
        for (auto& mp : main_params)
            if (w.path == mp.path) sup_.change_param(mp.param, number(w.value));
    } catch (const ModeChangeError& e) {
        ctx_.log.warning("remote write {} refused: {}", w.path, e.what());
    }
    sync_items();
}

void InverterPlugin::sync_items() {
    if (!svc_) return;
    auto batch = svc_->batch();
    const Op& op = sup_.target_op();
    svc_->set("/Mode", std::string(to_string(sup_.target())));
    for (auto& mp : main_params) {
        auto it = op.find(mp.param);
        svc_->set(mp.path, it != op.end() ? param_to_value(it->second) : Value());
    }
    svc_->set("/Error", sup_.error());
    std::string status = !sup_.inputs_ok() ? "input lost: " + watch_.input_problem()
                         : !watch_.may_write() && !writer_.fake() ? "not writing: " + watch_.write_problem()
                         : writer_.fake() ? "fake" : "running";
    svc_->set("/Status", status);
    for (int k = 0; k < max_phases; ++k)
        svc_->set(fmt::format("/Setpoint/L{}", k + 1),
                  k < static_cast<int>(writer_.last_written().size()) ? Value(writer_.last_written()[k]) : Value());
    std::string vb = vebus();
    auto dot = vb.rfind('.');
    svc_->set("/Mgmt/Connection", vb.empty() ? std::string("MoaT Inv") : "MoaT Inv " + vb.substr(dot + 1));
}

void InverterPlugin::build_control() {
    control_ = std::make_unique<DBusObject>(svc_->bus(), control::path);
    // A refused change is its own error; anything else is logged (a bug).
    auto guarded = [this](auto&& fn) {
        try {
            return fn();
        } catch (const ModeChangeError& e) {
            throw dbus_error(e);
        } catch (const DBusError&) {
            throw;
        } catch (const std::exception& e) {
            ctx_.log.error("control interface: {}", e.what());
            throw;
        }
    };
    using Args = std::vector<Value>;
    control_->add_method(control_iface, control::get_modes, "", "as", [guarded](const Args&) {
        return guarded([] {
            Value::List v;
            for (auto& m : modes()) v.emplace_back(std::string(m.name));
            return Args{Value(std::move(v))};
        });
    });
    control_->add_method(control_iface, control::get_mode_info, "s", "a{ss}", [guarded](const Args& args) {
        return guarded([&] {
            const std::string mode = args.at(0).as_string();
            auto m = parse_mode(mode);
            if (!m) throw DBusError(err_unknown, fmt::format("unknown mode '{}'", mode));
            Value::Dict info;
            for (auto& p : mode_info(*m).params)
                if (!p.hidden) info[p.name] = std::string(p.help);
            info["_l"] = std::string(mode_info(*m).description);
            return Args{Value(std::move(info))};
        });
    });
    control_->add_method(control_iface, control::set_mode, "sa{sv}", "b", [this, guarded](const Args& args) {
        return guarded([&] {
            Op op;
            if (args.at(1).is_dict())
                for (auto& [k, v] : args.at(1).as_dict()) op[k] = param_value(v, k);
            sup_.change_mode(args.at(0).as_string(), op);
            return Args{Value(true)};
        });
    });
    control_->add_method(control_iface, control::set_mode_param, "sv", "b", [this, guarded](const Args& args) {
        return guarded([&] {
            const std::string param = args.at(0).as_string();
            sup_.change_param(param, param_value(args.at(1), param));
            return Args{Value(true)};
        });
    });
    control_->add_method(control_iface, control::get_state, "", "a{sv}",
                         [this, guarded](const Args&) { return guarded([&] { return Args{state()}; }); });
    control_->publish();
}

} // namespace moat::inverter
