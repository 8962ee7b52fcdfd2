#include "sim_pty.hpp"

#include <unistd.h>

#include "port.hpp"

namespace moat::bms::sim {

Task<void> serve_pty(Loop& loop, PtyServer server, Event& reopen, Logger log)
{
    struct Unlink {
        std::string path;
        ~Unlink() { ::unlink(path.c_str()); }
    } unlink_at_end{server.link};
    for (;;) {
        Pty pty = open_pty();
        struct Close {
            int fd;
            ~Close() { ::close(fd); }
        } keep{pty.keep_slave};
        replace_symlink(pty.slave_path, server.link);
        SimDevice dev(loop, std::make_unique<ByteStream>(loop, pty.master, pty.slave_path), server.controller, server.options, log);
        if (server.on_device) server.on_device(&dev, pty.slave_path);
        log.info("serving a simulated controller on {} ({})", server.link, pty.slave_path);
        auto one = [&](TaskGroup& g) -> Task<void> {
            g.spawn(dev.run(), "moat-bms sim");
            co_await reopen.wait();
            g.cancel();
        };
        try {
            co_await with_group(one);
        } catch (const IoError& e) {
            log.warning("{}", e.what());
        } catch (...) {
            if (server.on_device) server.on_device(nullptr, {});
            throw;
        }
        if (server.on_device) server.on_device(nullptr, {});
        // The next controller (after end of file or a hard reset) boots with
        // what this one stored: its flash survives a power cycle.
        server.controller.device_config = dev.controller().stored_config();
        reopen.clear();
    }
}

Task<void> serve_unix(Loop& loop, PtyServer server, Event& reopen, Logger log)
{
    struct Unlink {
        std::string path;
        ~Unlink() { ::unlink(path.c_str()); }
    } unlink_at_end{server.link};
    Listener listener(loop, listen_unix(server.link), server.link);
    log.info("serving a simulated controller on the socket {}", server.link);
    for (;;) {
        auto next = listener.accept();
        const int fd = co_await next;
        SimDevice dev(loop, std::make_unique<ByteStream>(loop, fd, server.link), server.controller, server.options, log);
        if (server.on_device) server.on_device(&dev, server.link);
        // The connection ends by end of file (the host went) or by reopen.
        auto runner = [&]() -> Task<void> {
            try {
                auto r = dev.run();
                co_await r;
            } catch (const IoError& e) {
                log.warning("{}", e.what());
            }
            reopen.set();
        };
        auto one = [&](TaskGroup& g) -> Task<void> {
            g.spawn(runner(), "moat-bms sim");
            co_await reopen.wait();
            g.cancel();
        };
        try {
            co_await with_group(one);
        } catch (const IoError& e) {
            log.warning("{}", e.what());
        } catch (...) {
            if (server.on_device) server.on_device(nullptr, {});
            throw;
        }
        if (server.on_device) server.on_device(nullptr, {});
        reopen.clear();
    }
}

} // namespace moat::bms::sim
