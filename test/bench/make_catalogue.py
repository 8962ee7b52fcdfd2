#!/usr/bin/env python3
"""Write a benchmark catalogue (bench-contract.md, "Catalogue format").

A catalogue is the exact set of items a benchmark service exports: a
63-item battery (the nine mandatory paths and what a BMS publishes), padded
with per-cell voltages /Module/<m>/Cell/<c>/Voltage up to --paths. Both
forms are written: JSON {"schema": 1, "instance", "items", "dynamic"} and
TSV (PATH TYPE VALUE TEXTFORMAT, '#dynamic PATH' lines for the updated
paths in order).

    make_catalogue.py --paths N [--instance I] [--json FILE] [--tsv FILE]
"""
import argparse
import json

# (path, type, value, printf format or ""); type n = invalid (no value).
HEAD = [
    ("/Mgmt/ProcessName", "s", "bench-battery", ""),
    ("/Mgmt/ProcessVersion", "s", "1.0", ""),
    ("/Mgmt/Connection", "s", "Benchmark", ""),
    ("/DeviceInstance", "i", 0, ""),
    ("/ProductId", "i", 0xB004, "0x%X"),
    ("/ProductName", "s", "Benchmark Battery", ""),
    ("/FirmwareVersion", "i", 0x0110, ""),
    ("/HardwareVersion", "s", "1", ""),
    ("/Connected", "i", 1, ""),
    ("/CustomName", "s", "Bench bank", ""),
    ("/Serial", "s", "BENCH-0001", ""),
    ("/Dc/0/MidVoltage", "n", None, "%.2fV"),
    ("/Dc/0/MidVoltageDeviation", "n", None, "%.1f%%"),
    ("/Soh", "d", 99.0, "%.0f%%"),
    ("/InstalledCapacity", "d", 280.0, "%.0fAh"),
    ("/State", "i", 9, ""),
    ("/Error", "i", 0, ""),
    ("/Balancing", "i", 0, ""),
    ("/Info/BatteryLowVoltage", "d", 48.0, "%.2fV"),
    ("/System/MinVoltageCellId", "s", "C4", ""),
    ("/System/MaxVoltageCellId", "s", "C9", ""),
    ("/System/MinTemperatureCellId", "s", "C1", ""),
    ("/System/MaxTemperatureCellId", "s", "C16", ""),
    ("/System/NrOfCellsPerBattery", "i", 16, ""),
    ("/System/NrOfModulesOnline", "i", 1, ""),
    ("/System/NrOfModulesOffline", "i", 0, ""),
    ("/System/NrOfModulesBlockingCharge", "i", 0, ""),
    ("/System/NrOfModulesBlockingDischarge", "i", 0, ""),
    ("/Io/AllowToCharge", "i", 1, ""),
    ("/Io/AllowToDischarge", "i", 1, ""),
    ("/Io/ExternalRelay", "i", 0, ""),
    ("/History/ChargeCycles", "i", 87, ""),
    ("/History/DeepestDischarge", "d", -198.5, "%.1fAh"),
    ("/History/TotalEnergy", "x", 5000000000, ""),
]
ALARMS = ["LowVoltage", "HighVoltage", "LowCellVoltage", "HighCellVoltage", "LowSoc", "HighChargeCurrent",
          "HighDischargeCurrent", "CellImbalance", "InternalFailure", "HighChargeTemperature",
          "LowChargeTemperature", "HighTemperature", "LowTemperature"]
# The doubles a live BMS changes, in update order.
DYNAMIC = [
    ("/Dc/0/Voltage", 52.84, "%.2fV"),
    ("/Dc/0/Current", -3.9, "%.1fA"),
    ("/Dc/0/Power", -206.1, "%.0fW"),
    ("/Dc/0/Temperature", 19.5, "%.1fC"),
    ("/Soc", 81.2, "%.1f%%"),
    ("/ConsumedAmphours", -52.6, "%.1fAh"),
    ("/TimeToGo", 52000.0, "%.0fs"),
    ("/System/MinCellVoltage", 3.301, "%.3fV"),
    ("/System/MaxCellVoltage", 3.309, "%.3fV"),
    ("/System/MinCellTemperature", 18.5, "%.1fC"),
    ("/System/MaxCellTemperature", 20.5, "%.1fC"),
    ("/Capacity", 227.4, "%.1fAh"),
    ("/History/TotalAhDrawn", 24410.5, "%.1fAh"),
    ("/Info/MaxChargeCurrent", 120.0, "%.1fA"),
    ("/Info/MaxDischargeCurrent", 160.0, "%.1fA"),
    ("/Info/MaxChargeVoltage", 55.6, "%.2fV"),
]
CELLS = 16


def battery(instance):
    items = [(p, t, instance if p == "/DeviceInstance" else v, f) for p, t, v, f in HEAD]
    items += [("/Alarms/" + a, "i", 0, "") for a in ALARMS]
    items += [(p, "d", v, f) for p, v, f in DYNAMIC]
    return items


def build(paths, instance):
    items = battery(instance)
    if paths < len(items):
        raise SystemExit(f"make_catalogue: the battery alone has {len(items)} paths; --paths {paths} is too few")
    dynamic = [p for p, _, _ in DYNAMIC]
    for k in range(paths - len(items)):
        m, c = divmod(k, CELLS)
        path = f"/Module/{m}/Cell/{c + 1}/Voltage"
        items.append((path, "d", round(3.290 + 0.0005 * ((k * 11) % 37), 4), "%.3fV"))
        dynamic.append(path)
    return items, dynamic


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--paths", type=int, required=True)
    ap.add_argument("--instance", type=int, default=0)
    ap.add_argument("--json")
    ap.add_argument("--tsv")
    a = ap.parse_args()
    items, dynamic = build(a.paths, a.instance)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"schema": 1, "instance": a.instance,
                       "items": [{"path": p, "type": t, "value": v, "text": fm} for p, t, v, fm in items],
                       "dynamic": dynamic}, f, indent=0)
            f.write("\n")
    if a.tsv:
        with open(a.tsv, "w") as f:
            f.write("# path\ttype\tvalue\ttextformat\n")
            for p, t, v, fm in items:
                sv = "" if t == "n" else repr(float(v)) if t == "d" else str(v)
                f.write(f"{p}\t{t}\t{sv}\t{fm}\n")
            for p in dynamic:
                f.write(f"#dynamic\t{p}\n")


if __name__ == "__main__":
    main()
