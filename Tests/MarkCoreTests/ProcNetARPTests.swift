import MarkCore
import Testing

@Suite("/proc/net/arp parsing")
struct ProcNetARPTests {
    @Test("complete and permanent entries count; incomplete ones, bad lines and the header do not")
    func parse() throws {
        let text = """
        IP address       HW type     Flags       HW address            Mask     Device
        192.168.1.20     0x1         0x2         02:00:00:00:01:07     *        br-lan
        192.168.1.21     0x1         0x6         02:00:00:00:01:08     *        br-lan
        192.168.1.22     0x1         0x0         00:00:00:00:00:00     *        br-lan
        not-an-address   0x1         0x2         02:00:00:00:01:09     *        br-lan
        192.168.1.23     0x1         0x2
        """
        let table = ProcNetARP.parse(text)
        #expect(table.count == 2)
        #expect(table[try #require(IPAddress("192.168.1.20"))] == MACAddress("02:00:00:00:01:07"))
        #expect(table[try #require(IPAddress("192.168.1.21"))] == MACAddress("02:00:00:00:01:08"))
        #expect(table[try #require(IPAddress("192.168.1.22"))] == nil)
    }
}
