"""An independent Modbus TCP peer for the meters plugin: Debian's
python3-pymodbus serving register images of an Eastron SDM630 v2 (unit 1)
and a Carlo Gavazzi EM24 RTU (unit 2), built here from the manufacturers'
register tables (shared/specs/meters.md §4), not from our code.

    python3 pymodbus_meters.py PORT      prints "ready PORT" once it listens

The expected published values are in EXPECTED (what a reader must show).
"""

import struct
import sys

SDM_SERIAL = 87654321
EM24_SERIAL = "BX99887"


def f32(v):
    hi, lo = struct.unpack(">HH", struct.pack(">f", v))
    return [hi, lo]


def u32(v):
    return [(v >> 16) & 0xFFFF, v & 0xFFFF]


def s32l(v):
    v &= 0xFFFFFFFF
    return [v & 0xFFFF, (v >> 16) & 0xFFFF]


def text(s, words):
    b = s.encode().ljust(2 * words, b"\0")
    return [b[2 * i] << 8 | b[2 * i + 1] for i in range(words)]


def put(bank, addr, words):
    for i, w in enumerate(words):
        bank[addr + i] = w


# ---- SDM630 v2: input registers for data, holding for identification ----
SDM = {
    "/Ac/L1/Voltage": 229.75, "/Ac/L2/Voltage": 231.0, "/Ac/L3/Voltage": 233.25,
    "/Ac/L1/Current": 4.5, "/Ac/L2/Current": 0.25, "/Ac/L3/Current": 10.0,
    "/Ac/L1/Power": 1000.0, "/Ac/L2/Power": -50.0, "/Ac/L3/Power": 2300.0,
    "/Ac/Power": 3250.0, "/Ac/Current": 14.75, "/Ac/Frequency": 49.98046875,
    "/Ac/Energy/Forward": 12345.5, "/Ac/Energy/Reverse": 321.25,
    "/Ac/L1/Energy/Forward": 4000.5, "/Ac/L2/Energy/Forward": 4100.5, "/Ac/L3/Energy/Forward": 4244.5,
    "/Ac/L1/Energy/Reverse": 100.25, "/Ac/L2/Energy/Reverse": 120.0, "/Ac/L3/Energy/Reverse": 101.0,
}
sdm_input, sdm_holding = {}, {}
for n in (1, 2, 3):
    put(sdm_input, 0x0000 + 2 * (n - 1), f32(SDM[f"/Ac/L{n}/Voltage"]))
    put(sdm_input, 0x0006 + 2 * (n - 1), f32(SDM[f"/Ac/L{n}/Current"]))
    put(sdm_input, 0x000C + 2 * (n - 1), f32(SDM[f"/Ac/L{n}/Power"]))
    put(sdm_input, 0x015A + 2 * (n - 1), f32(SDM[f"/Ac/L{n}/Energy/Forward"]))
    put(sdm_input, 0x0160 + 2 * (n - 1), f32(SDM[f"/Ac/L{n}/Energy/Reverse"]))
put(sdm_input, 0x0034, f32(SDM["/Ac/Power"]))
put(sdm_input, 0x0030, f32(SDM["/Ac/Current"]))
put(sdm_input, 0x0046, f32(SDM["/Ac/Frequency"]))
put(sdm_input, 0x0048, f32(SDM["/Ac/Energy/Forward"]))
put(sdm_input, 0x004A, f32(SDM["/Ac/Energy/Reverse"]))
# The holes between the published values hold other measurements on a real meter.
for a in range(0x0000, 0x004C):
    sdm_input.setdefault(a, 0)
put(sdm_holding, 0xFC02, [0x0070])
put(sdm_holding, 0xFC03, [0x0105])
put(sdm_holding, 0x000A, f32(3.0))          # 3P4W
put(sdm_holding, 0xFC00, u32(SDM_SERIAL))
put(sdm_holding, 0x0014, f32(1.0))          # node address
put(sdm_holding, 0x001C, f32(2.0))          # 9600 Bd code

# ---- EM24 RTU: everything holding ----
EM = {
    "/Ac/L1/Voltage": 230.1, "/Ac/L2/Voltage": 229.9, "/Ac/L3/Voltage": 231.4,
    "/Ac/L1/Current": 1.234, "/Ac/L2/Current": 0.5, "/Ac/L3/Current": 2.0,
    "/Ac/L1/Power": 280.3, "/Ac/L2/Power": -100.0, "/Ac/L3/Power": 460.0,
    "/Ac/Power": 640.3, "/Ac/Frequency": 50.1,
    "/Ac/Energy/Forward": 777.7, "/Ac/Energy/Reverse": 12.3,
    "/Ac/L1/Energy/Forward": 250.1, "/Ac/L2/Energy/Forward": 260.2, "/Ac/L3/Energy/Forward": 267.4,
    "/PhaseSequence": 0,
}
em = {}
for n in (1, 2, 3):
    put(em, 0x0000 + 2 * (n - 1), s32l(round(EM[f"/Ac/L{n}/Voltage"] * 10)))
    put(em, 0x000C + 2 * (n - 1), s32l(round(EM[f"/Ac/L{n}/Current"] * 1000)))
    put(em, 0x0012 + 2 * (n - 1), s32l(round(EM[f"/Ac/L{n}/Power"] * 10)))
    put(em, 0x0046 + 2 * (n - 1), s32l(round(EM[f"/Ac/L{n}/Energy/Forward"] * 10)))
put(em, 0x0028, s32l(round(EM["/Ac/Power"] * 10)))
put(em, 0x0037, [round(EM["/Ac/Frequency"] * 10)])
put(em, 0x003E, s32l(round(EM["/Ac/Energy/Forward"] * 10)))
put(em, 0x005C, s32l(round(EM["/Ac/Energy/Reverse"] * 10)))
put(em, 0x0036, [0])
for a in range(0x0000, 0x0060):
    em.setdefault(a, 0)                     # the rest of the EM24's measurement map
put(em, 0x000B, [71])                       # EM24-DIN AV2
put(em, 0x1101, [7])                        # application H
put(em, 0x0302, [5])                        # EM24DINAV23XISPFA
put(em, 0x0303, [0x0012])
put(em, 0x1102, [0])                        # 3P.n
put(em, 0x1300, text(EM24_SERIAL, 7))

EXPECTED = {
    1: {"ident": f"cg_{SDM_SERIAL}", "values": SDM, "serial": str(SDM_SERIAL), "model": "SDM630Modbusv2",
        "product": "Eastron SDM630-Modbus v2", "hardware": 0x0070, "firmware": 0x0105, "phaseconfig": 3.0},
    2: {"ident": f"cg_{EM24_SERIAL}", "values": EM, "serial": EM24_SERIAL, "model": "EM24-DIN AV2",
        "product": "Carlo Gavazzi EM24RTU Energy Meter", "hardware": 5, "firmware": 0x0012, "phaseconfig": 0},
}


def main(port):
    from pymodbus.datastore import ModbusServerContext, ModbusSlaveContext, ModbusSparseDataBlock
    from pymodbus.server import StartTcpServer
    import logging
    logging.basicConfig(level=logging.ERROR)

    def slave(holding, inp):
        return ModbusSlaveContext(di=ModbusSparseDataBlock({0: 0}), co=ModbusSparseDataBlock({0: 0}),
                                  hr=ModbusSparseDataBlock(dict(holding)), ir=ModbusSparseDataBlock(dict(inp)),
                                  zero_mode=True)

    context = ModbusServerContext(slaves={1: slave(sdm_holding, sdm_input), 2: slave(em, {0: 0})}, single=False)
    print(f"ready {port}", flush=True)
    StartTcpServer(context=context, address=("127.0.0.1", port))


if __name__ == "__main__":
    main(int(sys.argv[1]))
