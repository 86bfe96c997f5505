namespace Atelier.Storage;

/// <summary>The store refused what a client sent it (a part's ETag that does not match, a multipart upload that is gone): the client's to fix.</summary>
public sealed class ObjectStoreRefusedException(string message, Exception? inner = null) : IOException(message, inner);
