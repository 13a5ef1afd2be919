// saml-bench: ACS validation throughput of TesseraSAML (issue 3, "Speed"; run by scripts/bench_saml.sh).
//
//     saml-bench --metadata FILE --response FILE --request-id ID --issuer URL --tenant T
//                [--seconds N] [--threads K] [--warmup S]
//
// Reads the IdP's metadata and one base64 SAML Response (HTTP-POST form value), then runs K
// threads (default 2) that each verify that same response with `SAMLResponseVerifier.verify`
// again and again for N seconds (default 10) after S seconds of unmeasured warm-up (default 1).
// Every ACS check runs (size, strict parse, Status, Destination, one assertion, signature by the
// metadata key over the node read, Issuer, Audience, validity, bearer confirmation, InResponseTo)
// except the assertion-ID replay store, which needs the database. Prints one JSON line:
//
//     {"verified_per_second":…, "p50_us":…, "p99_us":…, "threads":K, "count":…, "failures":0, …}
//
// Exit 1 when any verification is refused (with the refusal's description), 2 on a usage error.

import Foundation
import TesseraCore
import TesseraSAML

struct Options {
    var metadata = ""
    var response = ""
    var requestID = ""
    var issuer = ""
    var tenant = ""
    var seconds = 10.0
    var threads = 2
    var warmup = 1.0

    static let usage =
        "usage: saml-bench --metadata FILE --response FILE --request-id ID --issuer URL --tenant T [--seconds N] [--threads K] [--warmup S]"

    init(arguments: [String]) throws(BenchError) {
        var rest = arguments[...]
        while let name = rest.popFirst() {
            guard let value = rest.popFirst() else { throw .usage("\(name) needs a value") }
            switch name {
            case "--metadata": metadata = value
            case "--response": response = value
            case "--request-id": requestID = value
            case "--issuer": issuer = value
            case "--tenant": tenant = value
            case "--seconds":
                guard let number = Double(value), number > 0, number <= 600 else { throw .usage("--seconds must be in (0, 600]") }
                seconds = number
            case "--threads":
                guard let number = Int(value), (1...64).contains(number) else { throw .usage("--threads must be in 1...64") }
                threads = number
            case "--warmup":
                guard let number = Double(value), number >= 0, number <= 60 else { throw .usage("--warmup must be in [0, 60]") }
                warmup = number
            default: throw .usage("unknown argument \(name)")
            }
        }
        for (name, value) in [
            ("--metadata", metadata), ("--response", response), ("--request-id", requestID), ("--issuer", issuer), ("--tenant", tenant),
        ]
        where value.isEmpty {
            throw .usage("\(name) is required")
        }
    }
}

enum BenchError: Error, CustomStringConvertible {
    case usage(String)
    case setup(String)
    case refused(String)

    var description: String {
        switch self {
        case .usage(let why): "\(why)\n\(Options.usage)"
        case .setup(let why): why
        case .refused(let why): "verification refused: \(why)"
        }
    }
}

/// One measuring thread: its latencies (ns) and the first refusal it met. Written only by its own
/// thread, read by the main thread after the group is done (the group orders the two).
final class Worker: @unchecked Sendable {
    var latencies: [UInt64] = []
    var failures = 0
    var firstFailure: String?
    var lastEnd: UInt64 = 0

    init(expected: Int) { latencies.reserveCapacity(expected) }
}

/// Monotonic nanoseconds.
func nanoseconds() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

/// CPU time of the whole process (all threads, user + system), in seconds: with the wall time it
/// shows whether the threads really had their cores (other processes on the machine share them).
func processCPUSeconds() -> Double {
    var time = timespec()
    guard clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time) == 0 else { return 0 }
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

struct Bench: Sendable {
    let verifier: SAMLResponseVerifier
    let trust: IdPTrust
    let encoded: String
    let requestID: String

    func verifyOnce() throws(SAMLRefusal) {
        let verified = try verifier.verify(
            encodedResponse: encoded, idp: trust, pendingRequestID: requestID, allowUnsolicited: false, now: Date())
        guard verified.inResponseTo == requestID else { throw SAMLRefusal(.inResponseTo, "the verified assertion answers another request") }
    }

    /// Verifies in a loop until `deadline` (monotonic ns); records each latency when `worker` is set.
    func loop(until deadline: UInt64, into worker: Worker?) {
        while true {
            let start = nanoseconds()
            if start >= deadline { break }
            do {
                try verifyOnce()
            } catch {
                if let worker {
                    worker.failures += 1
                    if worker.firstFailure == nil { worker.firstFailure = error.description }
                }
                break
            }
            let end = nanoseconds()
            if let worker {
                worker.latencies.append(end - start)
                worker.lastEnd = end
            }
        }
    }
}

/// Runs `threads` threads of `bench.loop` from a common start; returns the workers and the start.
func run(_ bench: Bench, threads: Int, seconds: Double, measured: Bool) -> (workers: [Worker], start: UInt64) {
    let workers = (0..<threads).map { _ in Worker(expected: measured ? Int(seconds * 20_000) : 0) }
    let ready = DispatchGroup()
    let done = DispatchGroup()
    let go = DispatchSemaphore(value: 0)
    // The deadline is set once every thread is waiting at the gate.
    final class Gate: @unchecked Sendable { var start: UInt64 = 0; var deadline: UInt64 = 0 }
    let gate = Gate()
    for worker in workers {
        ready.enter()
        done.enter()
        let thread = Thread {
            ready.leave()
            go.wait()
            bench.loop(until: gate.deadline, into: measured ? worker : nil)
            done.leave()
        }
        thread.stackSize = 4 << 20
        thread.start()
    }
    ready.wait()
    gate.start = nanoseconds()
    gate.deadline = gate.start + UInt64(seconds * 1e9)
    for _ in workers { go.signal() }  // each signal happens after the writes above
    done.wait()
    return (workers, gate.start)
}

/// Nearest-rank percentile of sorted values.
func percentile(_ sorted: [UInt64], _ p: Double) -> UInt64 {
    guard !sorted.isEmpty else { return 0 }
    let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
    return sorted[min(max(rank, 1), sorted.count) - 1]
}

func microseconds(_ ns: UInt64) -> String { String(format: "%.1f", Double(ns) / 1000) }

func main() throws(BenchError) {
    let options = try Options(arguments: Array(CommandLine.arguments.dropFirst()))
    guard let metadataBytes = FileManager.default.contents(atPath: options.metadata) else {
        throw .setup("cannot read the metadata file \(options.metadata)")
    }
    guard let responseBytes = FileManager.default.contents(atPath: options.response),
        let encoded = String(data: responseBytes, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines), !encoded.isEmpty
    else { throw .setup("cannot read the response file \(options.response)") }
    guard let tenant = TenantID(options.tenant) else { throw .usage("--tenant is not a valid tenant ID") }

    let trust: IdPTrust
    do {
        let metadata = try IdPMetadata(xml: Array(metadataBytes), now: Date())
        trust = try IdPTrust(metadata: metadata, signedPart: .assertion, allowSHA1: false)
    } catch {
        throw .setup("the IdP metadata is refused: \(error)")
    }
    let sp = ServiceProviderEndpoints(issuer: options.issuer, tenant: tenant)
    let bench = Bench(
        verifier: SAMLResponseVerifier(serviceProvider: sp, decryptionKey: nil), trust: trust, encoded: encoded,
        requestID: options.requestID)

    // Once by itself: a refusal stops here with its reason, before any timing.
    do {
        try bench.verifyOnce()
    } catch {
        throw .refused(error.description)
    }
    if options.warmup > 0 {
        _ = run(bench, threads: options.threads, seconds: options.warmup, measured: false)
    }

    let cpuBefore = processCPUSeconds()
    let (workers, start) = run(bench, threads: options.threads, seconds: options.seconds, measured: true)
    let cpuSeconds = processCPUSeconds() - cpuBefore
    if let failure = workers.compactMap(\.firstFailure).first {
        throw .refused("\(workers.reduce(0) { $0 + $1.failures }) failure(s), the first: \(failure)")
    }
    var all = workers.flatMap(\.latencies)
    all.sort()
    guard !all.isEmpty else { throw .setup("no verification finished in \(options.seconds) s") }
    let end = workers.map(\.lastEnd).max() ?? start
    let elapsed = Double(end - start) / 1e9
    let rate = Double(all.count) / elapsed
    let mean = Double(all.reduce(0, +)) / Double(all.count) / 1000

    let fields: [(String, String)] = [
        ("verified_per_second", String(format: "%.1f", rate)),
        ("p50_us", microseconds(percentile(all, 50))),
        ("p90_us", microseconds(percentile(all, 90))),
        ("p99_us", microseconds(percentile(all, 99))),
        ("max_us", microseconds(all.last ?? 0)),
        ("mean_us", String(format: "%.1f", mean)),
        ("threads", String(options.threads)),
        ("count", String(all.count)),
        ("failures", "0"),
        ("elapsed_seconds", String(format: "%.3f", elapsed)),
        ("cpu_seconds", String(format: "%.3f", cpuSeconds)),
        ("response_bytes_base64", String(encoded.utf8.count)),
    ]
    print("{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}")
}

do {
    try main()
} catch {
    FileHandle.standardError.write(Data("saml-bench: \(error)\n".utf8))
    if case .usage = error { exit(2) }
    exit(1)
}
