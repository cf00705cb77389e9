/// The kernel's IPv4 neighbour table as /proc/net/arp prints it:
/// "IP address  HW type  Flags  HW address  Mask  Device", one entry per line after a header.
public enum ProcNetARP {
    /// Address -> MAC of the complete entries (the ATF_COM bit, 0x2, set in the flags: plain
    /// 0x2 and permanent 0x6 alike); incomplete ones have no usable MAC yet.
    public static func parse(_ text: String) -> [IPAddress: MACAddress] {
        var out: [IPAddress: MACAddress] = [:]
        for line in text.split(separator: "\n").dropFirst() {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 4, let ip = IPAddress(String(f[0])),
                  f[2].hasPrefix("0x"), let flags = UInt32(f[2].dropFirst(2), radix: 16), flags & 0x2 != 0,
                  let mac = MACAddress(String(f[3])) else { continue }
            out[ip] = mac
        }
        return out
    }
}
