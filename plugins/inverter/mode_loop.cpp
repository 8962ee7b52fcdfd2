#include "mode_loop.hpp"

#include <stdexcept>

#include "analyze.hpp"
#include "guard.hpp"
#include "settle.hpp"

namespace moat::inverter {

Task<void> apply_and_settle(Controller& ctl, LoopIo& io, const LoopTiming& timing, Target target) {
    Inputs in = co_await io.inputs();
    Cycle c = ctl.cycle(in, target);
    io.record(c);
    co_await io.write(c.setpoints);
    // Settle: a reading right after the write, one trigger, then up to 10 more.
    Settle settle(in.p_inv(), ctl.params.p_step);
    co_await io.trigger(timing.trigger_sleep);
    for (;;) {
        co_await io.trigger(timing.trigger_sleep);
        Inputs now = co_await io.inputs();
        io.reading(now.p_inv());
        if (settle.add(now.p_inv())) break;
    }
    ctl.running = true;
}

Task<void> run_mode(Controller& ctl, LoopIo& io, const LoopTiming& timing, Mode mode, Op& op, BmsIo* bms) {
    if (mode == Mode::analyze && !bms) throw std::logic_error("mode analyze without a BMS");
    Inputs in = co_await io.inputs();
    ctl.start_mode(in.p_inv());
    if (closed_loop(mode)) {
        // §18.8: no output of a new mode before a fresh reading of the system.
        co_await io.trigger(timing.trigger_sleep);
    }
    switch (mode) {
    case Mode::off: {
        Inputs now = co_await io.inputs();
        Cycle c = ctl.cycle(now, simple_target(mode, op));
        io.record(c);
        co_await io.write(c.setpoints);
        Event never;  // the plugin's refresh task keeps re-writing
        co_await never.wait();
        break;
    }
    case Mode::idle:
        for (;;) {
            Inputs now = co_await io.inputs();
            Cycle c = ctl.cycle(now, simple_target(mode, op));
            io.record(c);
            co_await io.write(c.setpoints);
            co_await io.trigger(timing.idle_sleep);
        }
    case Mode::p_grid:
    case Mode::p_inv:
    case Mode::i_batt:
        for (;;) co_await apply_and_settle(ctl, io, timing, simple_target(mode, op));
    case Mode::soc:
        for (;;) {
            co_await apply_and_settle(ctl, io, timing, soc_first_target(op));
            Inputs now = co_await io.inputs();
            SocReport r;
            Target t = soc_target(op, now.soc(), &r);
            io.soc_report(r);
            co_await apply_and_settle(ctl, io, timing, t);
            co_await io.trigger(timing.trigger_sleep);
        }
    case Mode::remote:
        for (;;) {
            Inputs now = co_await io.inputs();
            RemoteReport rr;
            Target t = remote_step(op, now, io.solar_p(), &rr);
            io.remote_report(rr);
            co_await apply_and_settle(ctl, io, timing, t);
        }
    case Mode::analyze: {
        auto run = run_analyze(ctl, io, *bms, timing, op);
        co_await run;
        break;
    }
    }
}

} // namespace moat::inverter
