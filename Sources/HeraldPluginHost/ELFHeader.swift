import Foundation

/// The first bytes of an ELF file, read before `dlopen` so that a wrong file gets a precise
/// sentence ("built for aarch64") instead of the dynamic loader's terse one.
struct ELFHeader {
    enum Problem: Error {
        case unreadable
        case notELF
        case wrongClass(bits: Int)
        case wrongMachine(String)
        case notSharedObject
    }

    static let hostMachine: UInt16 = {
        #if arch(x86_64)
        return 62
        #elseif arch(arm64)
        return 183
        #else
        return 0
        #endif
    }()

    static func machineName(_ machine: UInt16) -> String {
        switch machine {
        case 3: "i386"
        case 8: "MIPS"
        case 20: "PowerPC"
        case 21: "PowerPC64"
        case 40: "32-bit ARM"
        case 62: "x86_64"
        case 183: "aarch64"
        case 243: "RISC-V"
        default: "machine type \(machine)"
        }
    }

    /// Checks that `path` is a 64-bit little-endian shared object for this machine.
    static func check(path: String) -> Problem? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return .unreadable }
        defer { try? handle.close() }
        let bytes = [UInt8]((try? handle.read(upToCount: 64)) ?? Data())
        guard bytes.count >= 20, bytes[0] == 0x7F, bytes[1] == 0x45, bytes[2] == 0x4C, bytes[3] == 0x46 else { return .notELF }
        guard bytes[4] == 2 else { return .wrongClass(bits: bytes[4] == 1 ? 32 : 0) }
        let little = bytes[5] == 1
        func u16(_ at: Int) -> UInt16 {
            little ? UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 : UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1])
        }
        let type = u16(16)
        let machine = u16(18)
        if hostMachine != 0 && machine != hostMachine { return .wrongMachine(machineName(machine)) }
        guard type == 3 else { return .notSharedObject }  // ET_DYN
        return nil
    }
}
