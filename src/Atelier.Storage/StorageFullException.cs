namespace Atelier.Storage;

/// <summary>A write was refused or failed because the storage disk is full (or under its threshold).</summary>
public sealed class StorageFullException(string message, Exception? inner = null) : IOException(message, inner);
