public import Foundation
public import TesseraCore
public import TesseraJOSE

/// Secrets the broker holds as a client of upstream providers, and symmetric keys of its own, in
/// the keys folder (0600 files in 0700 folders; sealed with the KEK when one is set) — never in
/// the database, where backups and replicas would carry them.
extension KeyDirectory {
    /// The 32-byte key that seals short-lived browser state (pending sign-ins).
    public func cookieKey() throws -> [UInt8] { try symmetricKey(named: "cookie.key") }

    /// A 32-byte random key kept in `name`, made on first use.
    public func symmetricKey(named name: String) throws -> [UInt8] {
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        return try withExclusiveLock {
            let file = root.appendingPathComponent(name)
            if let existing = FileManager.default.contents(atPath: file.path) {
                guard existing.count == 32 else { throw KeyRingError.storage("\(name) must hold 32 bytes") }
                return Array(existing)
            }
            let key = Secrets.randomBytes(32)
            guard FileManager.default.createFile(atPath: file.path, contents: Data(key), attributes: [.posixPermissions: 0o600]) else {
                throw KeyRingError.storage("cannot write \(name)")
            }
            return key
        }
    }

    /// Stores the client secret the broker uses at provider `id`'s token endpoint.
    public func storeClientSecret(_ secret: String, providerID id: String) throws {
        try writeProviderFile("\(id).secret", Array(secret.utf8), label: "\(id).secret")
    }

    public func clientSecret(providerID id: String) throws -> String {
        String(decoding: try readProviderFile("\(id).secret", label: "\(id).secret"), as: UTF8.self)
    }

    /// The ES256 key the broker signs client assertions with at provider `id`, made when `create`.
    public func clientKey(providerID id: String, create: Bool) throws -> JWSSigningKey {
        let name = "\(id).key.json"
        if create, !FileManager.default.fileExists(atPath: providersFolder.appendingPathComponent(name).path) {
            let key = try JWSSigningKey.generate(.ES256)
            try writeProviderFile(name, StrictJSON.serialize(key.privateJWK), label: name)
            return key
        }
        do {
            return try JWSSigningKey(privateJWK: try StrictJSON.parse(try readProviderFile(name, label: name)))
        } catch let error as KeyRingError {
            throw error
        } catch {
            throw KeyRingError.storage("\(name) is not a valid private JWK")
        }
    }

    var providersFolder: URL { root.appendingPathComponent("oidc", isDirectory: true) }

    /// Sealed files start with this line; plain ones are the bytes themselves.
    private static let sealedPrefix = Array("sealed:v1:".utf8)

    private func writeProviderFile(_ name: String, _ bytes: [UInt8], label: String) throws {
        try FileManager.default.createDirectory(
            at: providersFolder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let contents = try sealedIfConfigured(bytes, label: label)
        let target = providersFolder.appendingPathComponent(name)
        let temporary = providersFolder.appendingPathComponent(".\(name).tmp")
        guard FileManager.default.createFile(atPath: temporary.path, contents: Data(contents), attributes: [.posixPermissions: 0o600]),
            rename(temporary.path, target.path) == 0
        else { throw KeyRingError.storage("cannot write \(name)") }
    }

    private func readProviderFile(_ name: String, label: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: providersFolder.appendingPathComponent(name).path) else {
            throw KeyRingError.storage("\(name) is missing from the keys folder")
        }
        return try unsealed(Array(data), label: label)
    }

    /// A file's contents as stored: sealed with the KEK when one is set, else the bytes themselves.
    fileprivate func sealedIfConfigured(_ bytes: [UInt8], label: String) throws -> [UInt8] {
        try kek.map { kek in Self.sealedPrefix + Array(try kek.seal(bytes, kid: label).utf8) } ?? bytes
    }

    fileprivate func unsealed(_ bytes: [UInt8], label: String) throws -> [UInt8] {
        guard bytes.starts(with: Self.sealedPrefix) else { return bytes }
        guard let kek else { throw KeyRingError.sealing("\(label) is sealed; set TESSERA_KEK to the key-encryption key") }
        return try kek.open(String(decoding: bytes.dropFirst(Self.sealedPrefix.count), as: UTF8.self), kid: label)
    }
}

extension KeyDirectory {
    /// The bytes of `folder/name`, made by `create` on first use (under the folder lock, so two
    /// instances sharing the keys folder make one), sealed with the KEK when one is set.
    public func keyFile(folder: String, name: String, create: () throws -> [UInt8]) throws -> [UInt8] {
        let directory = root.appendingPathComponent(folder, isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let label = "\(folder)/\(name)"
        return try withExclusiveLock {
            let file = directory.appendingPathComponent(name)
            if let data = FileManager.default.contents(atPath: file.path) { return try unsealed(Array(data), label: label) }
            let bytes = try create()
            let contents = try sealedIfConfigured(bytes, label: label)
            let temporary = directory.appendingPathComponent(".\(name).tmp")
            guard FileManager.default.createFile(atPath: temporary.path, contents: Data(contents), attributes: [.posixPermissions: 0o600]),
                rename(temporary.path, file.path) == 0
            else { throw KeyRingError.storage("cannot write \(label)") }
            return bytes
        }
    }
}
