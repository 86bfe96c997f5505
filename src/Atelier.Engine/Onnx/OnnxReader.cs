using System.Text;

namespace Atelier.Engine.Onnx;

/// <summary>Where an initializer's values are: a span of the model file, or of an external data file beside it.</summary>
public sealed record OnnxTensorInfo(string Name, int ElementType, long[] Dims, string File, long Offset, long Length)
{
    public long Count => Dims.Aggregate(1L, (a, d) => checked(a * d));
}

/// <summary>A node: its name (PyTorch's exporter writes the module path, <c>/down_blocks.0/…/to_q/MatMul</c>), type and inputs.</summary>
public sealed record OnnxNodeInfo(string Name, string OpType, IReadOnlyList<string> Inputs);

/// <summary>
/// Reads an ONNX model's graph structure (nodes and where each initializer's values lie) without loading the values:
/// a streaming protobuf reader over the file that seeks past tensor data, so a model of gigabytes costs a few reads.
/// Field numbers from onnx.proto3: ModelProto.graph 7; GraphProto.node 1, initializer 5; NodeProto.input 1, name 3,
/// op_type 4; TensorProto.dims 1, data_type 2, float_data 4, name 8, raw_data 9, external_data 13, data_location 14.
/// </summary>
public static class OnnxReader
{
    public sealed record Graph(IReadOnlyList<OnnxNodeInfo> Nodes, IReadOnlyDictionary<string, OnnxTensorInfo> Initializers);

    public static Graph Read(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        var nodes = new List<OnnxNodeInfo>();
        var initializers = new Dictionary<string, OnnxTensorInfo>(StringComparer.Ordinal);
        var folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        ReadMessage(stream, stream.Length, (field, wire, length) =>
        {
            if (field == 7 && wire == 2)
            {
                ReadMessage(stream, stream.Position + length, (f, w, len) =>
                {
                    if (f == 1 && w == 2)
                    {
                        nodes.Add(ReadNode(stream, stream.Position + len));
                        return true;
                    }

                    if (f == 5 && w == 2)
                    {
                        var tensor = ReadTensor(stream, stream.Position + len, path, folder);
                        initializers[tensor.Name] = tensor;
                        return true;
                    }

                    return false;
                });
                return true;
            }

            return false;
        });
        return new Graph(nodes, initializers);
    }

    /// <summary>An initializer's values as floats (float32 or float16 data).</summary>
    public static float[] ReadFloats(OnnxTensorInfo tensor)
    {
        if (tensor.Offset < 0 || tensor.Length < 0 || tensor.Dims.Any(d => d < 0) || tensor.Length > (1L << 31) - 64)
        {
            throw new InvalidDataException($"initializer {tensor.Name}: no readable float data");
        }

        using var stream = new FileStream(tensor.File, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        stream.Position = tensor.Offset;
        var bytes = new byte[tensor.Length];
        stream.ReadExactly(bytes);
        return tensor.ElementType switch
        {
            OnnxGraph.ElementFloat when bytes.Length == tensor.Count * 4 => [.. System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes)],
            OnnxGraph.ElementFloat16 when bytes.Length == tensor.Count * 2 =>
                [.. System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(bytes).ToArray().Select(h => (float)h)],
            _ => throw new InvalidDataException($"initializer {tensor.Name}: element type {tensor.ElementType} with {bytes.Length} bytes for {tensor.Count} values is not float32 or float16 data"),
        };
    }

    /// <summary>Walks the fields of a message up to <paramref name="end"/>; <paramref name="onLengthDelimited"/> consumes one (true) or it is skipped.</summary>
    private static void ReadMessage(Stream s, long end, Func<int, int, long, bool>? onLengthDelimited, Action<int, ulong>? onVarint = null)
    {
        while (s.Position < end)
        {
            var key = ReadVarint(s);
            var field = (int)(key >> 3);
            var wire = (int)(key & 7);
            switch (wire)
            {
                case 0:
                    var v = ReadVarint(s);
                    onVarint?.Invoke(field, v);
                    break;
                case 1 or 5:
                    var skip = wire == 1 ? 8 : 4;
                    if (s.Position + skip > end)
                    {
                        throw new InvalidDataException("truncated ONNX model");
                    }

                    s.Seek(skip, SeekOrigin.Current);
                    break;
                case 2:
                    var raw = ReadVarint(s);
                    var start = s.Position;
                    if (raw > (ulong)(end - start))
                    {
                        throw new InvalidDataException("truncated ONNX model");
                    }

                    var length = (long)raw;
                    if (start + length > end)
                    {
                        throw new InvalidDataException("truncated ONNX model");
                    }

                    if (onLengthDelimited?.Invoke(field, wire, length) != true)
                    {
                        s.Position = start + length;
                    }
                    else if (s.Position != start + length)
                    {
                        s.Position = start + length;
                    }

                    break;
                default:
                    throw new InvalidDataException($"unexpected protobuf wire type {wire} in the ONNX model");
            }
        }
    }

    private static OnnxNodeInfo ReadNode(Stream s, long end)
    {
        var inputs = new List<string>();
        string name = "", op = "";
        ReadMessage(s, end, (field, _, length) =>
        {
            switch (field)
            {
                case 1:
                    inputs.Add(ReadString(s, length));
                    return true;
                case 3:
                    name = ReadString(s, length);
                    return true;
                case 4:
                    op = ReadString(s, length);
                    return true;
                default:
                    return false;
            }
        });
        return new OnnxNodeInfo(name, op, inputs);
    }

    private static OnnxTensorInfo ReadTensor(Stream s, long end, string modelPath, string folder)
    {
        var dims = new List<long>();
        int type = 0;
        string name = "";
        long offset = -1, length = 0;
        var external = new Dictionary<string, string>(StringComparer.Ordinal);
        ReadMessage(s, end, (field, _, len) =>
        {
            switch (field)
            {
                case 1: // packed dims
                    var stop = s.Position + len;
                    while (s.Position < stop)
                    {
                        dims.Add((long)ReadVarint(s));
                    }

                    return true;
                case 4 or 9: // float_data (packed) or raw_data: where the bytes are
                    offset = s.Position;
                    length = len;
                    return false;
                case 8:
                    name = ReadString(s, len);
                    return true;
                case 13:
                    string? k = null, v = null;
                    ReadMessage(s, s.Position + len, (f, _, l) =>
                    {
                        if (f == 1)
                        {
                            k = ReadString(s, l);
                        }
                        else if (f == 2)
                        {
                            v = ReadString(s, l);
                        }

                        return f is 1 or 2;
                    });
                    if (k is not null && v is not null)
                    {
                        external[k] = v;
                    }

                    return true;
                default:
                    return false;
            }
        }, (field, value) =>
        {
            if (field == 1)
            {
                dims.Add((long)value);
            }
            else if (field == 2)
            {
                type = (int)value;
            }
        });

        var file = modelPath;
        if (external.TryGetValue("location", out var location))
        {
            file = Path.GetFullPath(Path.Combine(folder, location));
            if (!file.StartsWith(folder + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            {
                throw new InvalidDataException($"initializer {name}: its external data '{location}' is outside the model's folder");
            }

            offset = !external.TryGetValue("offset", out var o) ? 0
                : long.TryParse(o, System.Globalization.CultureInfo.InvariantCulture, out var parsed) && parsed >= 0 ? parsed
                : throw new InvalidDataException($"initializer {name}: external data offset '{o}'");
            var available = File.Exists(file) ? new FileInfo(file).Length - offset : -1;
            length = !external.TryGetValue("length", out var l) ? available
                : long.TryParse(l, System.Globalization.CultureInfo.InvariantCulture, out var given) && given >= 0 && given <= available ? given
                : throw new InvalidDataException($"initializer {name}: external data length '{l}' does not fit {location}");
        }

        return new OnnxTensorInfo(name, type, [.. dims], file, offset, offset < 0 ? 0 : length);
    }

    private static string ReadString(Stream s, long length)
    {
        if (length > 1 << 20)
        {
            throw new InvalidDataException("an ONNX name over 1 MiB");
        }

        var bytes = new byte[length];
        s.ReadExactly(bytes);
        return Encoding.UTF8.GetString(bytes);
    }

    private static ulong ReadVarint(Stream s)
    {
        ulong result = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            var b = s.ReadByte();
            if (b < 0)
            {
                throw new InvalidDataException("truncated ONNX model");
            }

            result |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return result;
            }
        }

        throw new InvalidDataException("a malformed varint in the ONNX model");
    }
}
