using System.Buffers.Binary;
using System.Text;

namespace Atelier.Engine.Onnx;

/// <summary>
/// Writes ONNX models (protobuf) without a protobuf library: just the messages and fields that small generated
/// graphs need (field numbers from onnx.proto3). Used to build the tiny test and demo pipelines.
/// </summary>
public sealed class OnnxGraph
{
    public const int ElementFloat = 1;
    public const int ElementInt32 = 6;
    public const int ElementInt64 = 7;
    public const int ElementFloat16 = 10;

    private readonly List<byte[]> _nodes = [];
    private readonly List<byte[]> _initializers = [];
    private readonly List<byte[]> _inputs = [];
    private readonly List<byte[]> _outputs = [];

    /// <summary>Declares a graph input; a dimension is a number or a symbolic name.</summary>
    public OnnxGraph Input(string name, int elementType, params object[] dims)
    {
        _inputs.Add(ValueInfo(name, elementType, dims));
        return this;
    }

    public OnnxGraph Output(string name, int elementType, params object[] dims)
    {
        _outputs.Add(ValueInfo(name, elementType, dims));
        return this;
    }

    public OnnxGraph Constant(string name, float[] values, params long[] dims) => Initializer(name, ElementFloat, RawBytes(values, ElementFloat), dims);

    public OnnxGraph ConstantInt64(string name, long[] values, params long[] dims)
    {
        var raw = new byte[values.Length * 8];
        for (var i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteInt64LittleEndian(raw.AsSpan(i * 8), values[i]);
        }

        return Initializer(name, ElementInt64, raw, dims);
    }

    /// <summary>An initializer of any element type from its raw little-endian bytes.</summary>
    public OnnxGraph ConstantRaw(string name, int elementType, byte[] raw, params long[] dims) => Initializer(name, elementType, raw, dims);

    /// <summary>A TensorProto initializer: dims (1), data_type (2), name (8), raw little-endian data (9).</summary>
    private OnnxGraph Initializer(string name, int elementType, byte[] raw, long[] dims)
    {
        _initializers.Add(Tensor(name, elementType, raw, dims).ToArray());
        return this;
    }

    private static Proto Tensor(string name, int elementType, byte[] raw, long[] dims)
    {
        var t = new Proto();
        foreach (var d in dims)
        {
            t.Varint(1, (ulong)d);
        }

        t.Varint(2, (ulong)elementType);
        t.String(8, name);
        t.Bytes(9, raw);
        return t;
    }

    /// <summary>Adds a node; attributes are (name, long | long[] | float | string).</summary>
    public OnnxGraph Node(string opType, string[] inputs, string[] outputs, params (string Name, object Value)[] attributes) =>
        NamedNode($"{opType}_{_nodes.Count}", opType, inputs, outputs, attributes);

    /// <summary>Adds a node with a name of its own (PyTorch's exporter names nodes by module path: <c>/conv_in/Conv</c>).</summary>
    public OnnxGraph NamedNode(string nodeName, string opType, string[] inputs, string[] outputs, params (string Name, object Value)[] attributes)
    {
        var n = new Proto();
        foreach (var i in inputs)
        {
            n.String(1, i);
        }

        foreach (var o in outputs)
        {
            n.String(2, o);
        }

        n.String(3, nodeName);
        n.String(4, opType);
        foreach (var (name, value) in attributes)
        {
            var a = new Proto();
            a.String(1, name);
            switch (value)
            {
                case long l:
                    a.Varint(3, (ulong)l);
                    a.Varint(20, 2);
                    break;
                case int i:
                    a.Varint(3, (ulong)i);
                    a.Varint(20, 2);
                    break;
                case float f:
                    a.Fixed32(2, BitConverter.SingleToUInt32Bits(f));
                    a.Varint(20, 1);
                    break;
                case string text:
                    a.Bytes(4, Encoding.UTF8.GetBytes(text));
                    a.Varint(20, 3);
                    break;
                case long[] ls:
                    foreach (var l in ls)
                    {
                        a.Varint(8, (ulong)l);
                    }

                    a.Varint(20, 7);
                    break;
                default:
                    throw new ArgumentException($"Unsupported attribute value {value.GetType().Name}");
            }

            n.Message(5, a);
        }

        _nodes.Add(n.ToArray());
        return this;
    }

    /// <summary>
    /// A serialized model with more graph outputs (GraphProto.output, field 12, of ModelProto.graph, field 7): each a
    /// tensor the graph already computes, by name and element type. The graph's bytes are copied, the outputs appended
    /// (protobuf merges repeated fields), and the graph's length rewritten.
    /// </summary>
    public static byte[] WithOutputs(byte[] model, IReadOnlyList<(string Name, int ElementType)> outputs)
    {
        var (tag, start, length) = FindGraph(model);
        var extra = new Proto();
        foreach (var (name, type) in outputs)
        {
            var tensor = new Proto();
            tensor.Varint(1, (ulong)type);
            var typeProto = new Proto();
            typeProto.Message(1, tensor);
            var info = new Proto();
            info.String(1, name);
            info.Message(2, typeProto);
            extra.Message(12, info);
        }

        var graph = new Proto();
        graph.Bytes(7, [.. model.AsSpan(start, length), .. extra.ToArray()]);
        return [.. model.AsSpan(0, tag), .. graph.ToArray(), .. model.AsSpan(start + length)];
    }

    /// <summary>Values as an initializer's raw bytes: little-endian float32, or float16 for <see cref="ElementFloat16"/>.</summary>
    public static byte[] RawBytes(ReadOnlySpan<float> values, int elementType)
    {
        if (elementType == ElementFloat16)
        {
            var halves = new byte[values.Length * 2];
            for (var i = 0; i < values.Length; i++)
            {
                BinaryPrimitives.WriteHalfLittleEndian(halves.AsSpan(i * 2), (Half)values[i]);
            }

            return halves;
        }

        var bytes = new byte[values.Length * 4];
        for (var i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        }

        return bytes;
    }

    /// <summary>
    /// The model with the named initializers replaced (any shape; the values as raw little-endian bytes of the element
    /// type): the originals are dropped from the graph and the replacements written in line after its other fields,
    /// whose bytes (external data references included) are copied as they are. ONNX Runtime takes initializer overrides
    /// (<c>AddInitializer</c>) only in the memory its provider plans them in, so on CUDA a host override is ignored with
    /// a warning; a model with the new values written in works on every provider.
    /// </summary>
    public static byte[] WithInitializers(byte[] model, IReadOnlyDictionary<string, (int ElementType, long[] Dims, byte[] Raw)> replacements)
    {
        var (graphTag, graphStart, graphLength) = FindGraph(model);
        using var graph = new MemoryStream(graphLength + replacements.Values.Sum(r => r.Raw.Length + 256));
        var pos = graphStart;
        var end = graphStart + graphLength;
        while (pos < end)
        {
            var fieldStart = pos;
            var key = ReadVarint(model, ref pos);
            var (field, wire) = ((int)(key >> 3), (int)(key & 7));
            SkipValue(model, ref pos, wire, end);
            if (field == 5 && wire == 2 && TensorName(model, fieldStart) is { } name && replacements.ContainsKey(name))
            {
                continue;
            }

            graph.Write(model, fieldStart, pos - fieldStart);
        }

        foreach (var (name, (type, dims, raw)) in replacements)
        {
            var entry = new Proto();
            entry.Message(5, Tensor(name, type, raw, dims));
            graph.Write(entry.ToArray());
        }

        var wrapped = new Proto();
        wrapped.Bytes(7, graph.ToArray());
        var head = wrapped.ToArray();
        var result = new byte[graphTag + head.Length + (model.Length - end)];
        model.AsSpan(0, graphTag).CopyTo(result);
        head.CopyTo(result, graphTag);
        model.AsSpan(end).CopyTo(result.AsSpan(graphTag + head.Length));
        return result;
    }

    /// <summary>Where the ModelProto's graph (field 7) is: its tag's offset, and its contents' offset and length.</summary>
    private static (int Tag, int Start, int Length) FindGraph(byte[] model)
    {
        var pos = 0;
        while (pos < model.Length)
        {
            var tag = pos;
            var key = ReadVarint(model, ref pos);
            var (field, wire) = ((int)(key >> 3), (int)(key & 7));
            if (field == 7 && wire == 2)
            {
                var raw = ReadVarint(model, ref pos);
                if (raw > (ulong)(model.Length - pos))
                {
                    throw new InvalidDataException("truncated ONNX model");
                }

                return (tag, pos, (int)raw);
            }

            SkipValue(model, ref pos, wire, model.Length);
        }

        throw new InvalidDataException("the ONNX model has no graph");
    }

    /// <summary>The name (field 8) of the TensorProto in the length-delimited field that starts at <paramref name="fieldStart"/>.</summary>
    private static string? TensorName(byte[] model, int fieldStart)
    {
        var pos = fieldStart;
        ReadVarint(model, ref pos);
        var length = (int)ReadVarint(model, ref pos);
        var end = pos + length;
        while (pos < end)
        {
            var key = ReadVarint(model, ref pos);
            var (field, wire) = ((int)(key >> 3), (int)(key & 7));
            if (field == 8 && wire == 2)
            {
                var n = (int)ReadVarint(model, ref pos);
                return pos + n <= end ? Encoding.UTF8.GetString(model, pos, n) : null;
            }

            SkipValue(model, ref pos, wire, end);
        }

        return null;
    }

    private static void SkipValue(byte[] data, ref int pos, int wire, int end)
    {
        switch (wire)
        {
            case 0:
                ReadVarint(data, ref pos);
                break;
            case 1:
                pos += 8;
                break;
            case 5:
                pos += 4;
                break;
            case 2:
                var raw = ReadVarint(data, ref pos);
                if (raw > (ulong)(end - pos))
                {
                    throw new InvalidDataException("truncated ONNX model");
                }

                pos += (int)raw;
                break;
            default:
                throw new InvalidDataException($"unexpected protobuf wire type {wire} in the ONNX model");
        }

        if (pos > end)
        {
            throw new InvalidDataException("truncated ONNX model");
        }
    }

    private static ulong ReadVarint(byte[] data, ref int pos)
    {
        ulong result = 0;
        for (var shift = 0; shift < 64 && pos < data.Length; shift += 7)
        {
            var b = data[pos++];
            result |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return result;
            }
        }

        throw new InvalidDataException("a malformed varint in the ONNX model");
    }

    /// <summary>The serialized ModelProto (IR version 8, opset 17).</summary>
    public byte[] ToModel(string graphName)
    {
        using var buffer = new MemoryStream();
        WriteModel(buffer, graphName);
        return buffer.ToArray();
    }

    /// <summary>Writes the ModelProto to a file as it goes: a model of a gigabyte or more is never copied whole in memory.</summary>
    public void WriteModel(string path, string graphName)
    {
        using var file = File.Create(path);
        WriteModel(file, graphName);
    }

    private void WriteModel(Stream output, string graphName)
    {
        List<(int Field, byte[] Bytes)> graph =
        [
            .. _nodes.Select(n => (1, n)), (2, Encoding.UTF8.GetBytes(graphName)), .. _initializers.Select(i => (5, i)),
            .. _inputs.Select(i => (11, i)), .. _outputs.Select(o => (12, o)),
        ];
        var head = new Proto();
        head.Varint(1, 8);
        head.String(2, "atelier");
        output.Write(head.ToArray());
        WriteVarint(output, (7 << 3) | 2);
        WriteVarint(output, (ulong)graph.Sum(p => VarintLength((ulong)p.Field << 3) + VarintLength((ulong)p.Bytes.Length) + p.Bytes.LongLength));
        foreach (var (field, bytes) in graph)
        {
            WriteVarint(output, ((ulong)field << 3) | 2);
            WriteVarint(output, (ulong)bytes.Length);
            output.Write(bytes);
        }

        var opset = new Proto();
        opset.String(1, "");
        opset.Varint(2, 17);
        var tail = new Proto();
        tail.Message(8, opset);
        output.Write(tail.ToArray());
    }

    private static int VarintLength(ulong value)
    {
        var n = 1;
        while (value >= 0x80)
        {
            value >>= 7;
            n++;
        }

        return n;
    }

    private static void WriteVarint(Stream output, ulong value)
    {
        while (value >= 0x80)
        {
            output.WriteByte((byte)(value | 0x80));
            value >>= 7;
        }

        output.WriteByte((byte)value);
    }

    private static byte[] ValueInfo(string name, int elementType, object[] dims)
    {
        var shape = new Proto();
        foreach (var d in dims)
        {
            var dim = new Proto();
            if (d is string s)
            {
                dim.String(2, s);
            }
            else
            {
                dim.Varint(1, Convert.ToUInt64(d, System.Globalization.CultureInfo.InvariantCulture));
            }

            shape.Message(1, dim);
        }

        var tensor = new Proto();
        tensor.Varint(1, (ulong)elementType);
        tensor.Message(2, shape);
        var type = new Proto();
        type.Message(1, tensor);
        var info = new Proto();
        info.String(1, name);
        info.Message(2, type);
        return info.ToArray();
    }

    /// <summary>A protobuf message being written.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "A MemoryStream holds no unmanaged resource.")]
    private sealed class Proto
    {
        private readonly MemoryStream _buffer = new();

        public void Varint(int field, ulong value)
        {
            Tag(field, 0);
            Raw(value);
        }

        public void Fixed32(int field, uint value)
        {
            Tag(field, 5);
            Span<byte> b = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(b, value);
            _buffer.Write(b);
        }

        public void String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

        public void Message(int field, Proto message) => Bytes(field, message.ToArray());

        public void Bytes(int field, byte[] value)
        {
            Tag(field, 2);
            Raw((ulong)value.Length);
            _buffer.Write(value);
        }

        public byte[] ToArray() => _buffer.ToArray();

        private void Tag(int field, int wireType) => Raw(((ulong)field << 3) | (uint)wireType);

        private void Raw(ulong value)
        {
            while (value >= 0x80)
            {
                _buffer.WriteByte((byte)(value | 0x80));
                value >>= 7;
            }

            _buffer.WriteByte((byte)value);
        }
    }
}
