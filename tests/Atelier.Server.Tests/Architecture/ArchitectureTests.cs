using System.Reflection;
using System.Reflection.Emit;

namespace Atelier.Server.Tests.Architecture;

/// <summary>
/// The arrows of docs/architecture.md, checked on the built assemblies: which project may reference which, and which
/// of Core's feature folders may use which. References are read from the assemblies' metadata and, inside Core, from
/// every type's signatures and method bodies (the IL's member and type tokens), so a call hidden in a lambda counts.
/// </summary>
public sealed class ArchitectureTests
{
    /// <summary>Which Atelier projects each project may reference (nothing points back at the host).</summary>
    public static readonly Dictionary<string, string[]> ProjectArrows = new(StringComparer.Ordinal)
    {
        ["Atelier.Contracts"] = [],
        ["Atelier.Engine"] = [],
        ["Atelier.Storage"] = [],
        ["Atelier.Data"] = ["Atelier.Contracts"],
        ["Atelier.Runtime"] = [],
        ["Atelier.Runtime.Kubernetes"] = ["Atelier.Runtime"],
        ["Atelier.Core"] = ["Atelier.Contracts", "Atelier.Data", "Atelier.Storage", "Atelier.Runtime"],
        ["Atelier.Worker"] = ["Atelier.Contracts", "Atelier.Engine"],
        ["Atelier.Server"] = ["Atelier.Contracts", "Atelier.Core", "Atelier.Engine", "Atelier.Storage", "Atelier.Runtime", "Atelier.Runtime.Kubernetes"],
        ["atelier"] = ["Atelier.Contracts", "Atelier.Engine", "Atelier.Server", "Atelier.Worker"], // the executable (src/Atelier)
    };

    /// <summary>
    /// Core's feature folders, lowest first: a folder may use only folders of a lower rank (Platform composes the
    /// others at start). Equal ranks do not use each other.
    /// </summary>
    public static readonly Dictionary<string, int> CoreRanks = new(StringComparer.Ordinal)
    {
        ["Common"] = 0,
        ["Coordination"] = 1,
        ["Security"] = 1,
        ["Sessions"] = 2,
        ["Models"] = 2,
        ["Images"] = 2,
        ["Jobs"] = 3,
        ["Webhooks"] = 4,
        ["Identity"] = 5,
        ["Usage"] = 5,
        ["Tenancy"] = 6,
        ["Functions"] = 7,
        ["Agents"] = 8,
        ["Platform"] = 9,
    };

    private static readonly Assembly[] Assemblies =
    [
        typeof(Contracts.AtelierJson).Assembly, typeof(Engine.Onnx.DemoModel).Assembly, typeof(global::Atelier.Storage.IObjectStore).Assembly,
        typeof(Data.AtelierDb).Assembly, typeof(Core.Common.RequestContext).Assembly, typeof(global::Atelier.Worker.Runner.WorkerHost).Assembly,
        typeof(AtelierServer).Assembly, Assembly.Load("atelier"), typeof(Runtime.IRuntimeBackend).Assembly, Assembly.Load("Atelier.Runtime.Kubernetes"),
    ];

    [Fact]
    public void Projects_ReferenceOnlyTheProjectsBelowThem()
    {
        Assert.Equal(string.Join(", ", ProjectArrows.Keys.Order(StringComparer.Ordinal)), string.Join(", ", Assemblies.Select(a => a.GetName().Name!).Order(StringComparer.Ordinal)));
        Assert.Empty(ProjectViolations(Assemblies));
    }

    [Fact]
    public void CoreFeatureFolders_UseOnlyFoldersOfALowerRank()
    {
        var core = typeof(Core.Common.RequestContext).Assembly;
        var folders = core.GetTypes().Select(FolderOf).OfType<string>().Distinct(StringComparer.Ordinal).ToList();
        Assert.Empty(folders.Except(CoreRanks.Keys)); // a new folder gets its rank here and in docs/architecture.md
        Assert.Empty(CoreViolations(core));
    }

    [Fact]
    public void ReferenceReader_SeesACallInAMethodBody_AndAWrongArrowIsReported()
    {
        // The reader must see what the rules are about: this class calls into Core.Jobs only inside a method body.
        var used = ReferencedTypes(typeof(UsesJobsInABody)).Select(t => t.FullName).ToList();
        Assert.Contains(typeof(Contracts.Jobs.JobStates).FullName, used);
        var violations = FolderViolations("Security", [typeof(Core.Jobs.JobQueue)]);
        Assert.Equal(["Security uses Jobs (Atelier.Core.Jobs.JobQueue)"], violations);
    }

    /// <summary>Every reference between Atelier projects that the arrows do not allow.</summary>
    public static List<string> ProjectViolations(IEnumerable<Assembly> assemblies) =>
        [.. assemblies.SelectMany(a => a.GetReferencedAssemblies()
            .Select(r => r.Name!)
            .Where(r => r.StartsWith("Atelier", StringComparison.Ordinal) && ProjectArrows.ContainsKey(r))
            .Where(r => !ProjectArrows[a.GetName().Name!].Contains(r))
            .Select(r => $"{a.GetName().Name} references {r}"))];

    /// <summary>Every use of a Core feature folder by a folder that may not use it.</summary>
    public static List<string> CoreViolations(Assembly core) =>
        [.. core.GetTypes().Where(t => FolderOf(t) is not null)
            .SelectMany(t => FolderViolations(FolderOf(t)!, ReferencedTypes(t)))
            .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];

    private static IEnumerable<string> FolderViolations(string folder, IEnumerable<Type> used) =>
        used.Select(u => (Type: u, Folder: FolderOf(u)))
            .Where(u => u.Folder is not null && u.Folder != folder && folder != "Platform"
                        && CoreRanks.GetValueOrDefault(u.Folder, int.MaxValue) >= CoreRanks.GetValueOrDefault(folder, -1))
            .Select(u => $"{folder} uses {u.Folder} ({u.Type.FullName})");

    /// <summary>The feature folder of a type of Atelier.Core (its namespace's third part), or null for any other type.</summary>
    private static string? FolderOf(Type t) =>
        t.Assembly.GetName().Name == "Atelier.Core" && t.Namespace is { } ns && ns.StartsWith("Atelier.Core.", StringComparison.Ordinal)
            ? ns["Atelier.Core.".Length..].Split('.')[0]
            : null;

    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes).GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!).ToDictionary(o => o.Value);

    private const BindingFlags Everything = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    /// <summary>The types <paramref name="t"/> names: in its signatures, its locals, and every type or member token in its IL.</summary>
    public static HashSet<Type> ReferencedTypes(Type t)
    {
        var found = new HashSet<Type>();
        void Add(Type? x)
        {
            if (x is null || !found.Add(x))
            {
                return;
            }

            if (x.HasElementType)
            {
                Add(x.GetElementType());
            }

            if (x.IsGenericType)
            {
                foreach (var a in x.GetGenericArguments())
                {
                    Add(a);
                }
            }
        }

        Add(t.BaseType);
        foreach (var i in t.GetInterfaces())
        {
            Add(i);
        }

        foreach (var f in t.GetFields(Everything))
        {
            Add(f.FieldType);
        }

        foreach (var p in t.GetProperties(Everything))
        {
            Add(p.PropertyType);
        }

        foreach (var m in t.GetMethods(Everything).Cast<MethodBase>().Concat(t.GetConstructors(Everything)))
        {
            if (m is MethodInfo mi)
            {
                Add(mi.ReturnType);
            }

            foreach (var p in m.GetParameters())
            {
                Add(p.ParameterType);
            }

            var body = m.GetMethodBody();
            if (body is null)
            {
                continue;
            }

            foreach (var local in body.LocalVariables)
            {
                Add(local.LocalType);
            }

            foreach (var member in Tokens(m, body.GetILAsByteArray() ?? []))
            {
                Add(member as Type ?? member.DeclaringType);
                if (member is MethodInfo called)
                {
                    Add(called.ReturnType);
                }
            }
        }

        foreach (var nested in t.GetNestedTypes(Everything))
        {
            found.UnionWith(ReferencedTypes(nested));
        }

        return found;
    }

    private static IEnumerable<MemberInfo> Tokens(MethodBase m, byte[] il)
    {
        var typeArgs = m.DeclaringType is { IsGenericType: true } d ? d.GetGenericArguments() : null;
        var methodArgs = m.IsGenericMethod ? m.GetGenericArguments() : null;
        for (var i = 0; i < il.Length;)
        {
            var code = il[i] == 0xFE ? OpCodesByValue[(short)(0xFE00 | il[i + 1])] : OpCodesByValue[il[i]];
            i += code.Size;
            switch (code.OperandType)
            {
                case OperandType.InlineField or OperandType.InlineMethod or OperandType.InlineType or OperandType.InlineTok:
                    MemberInfo? member = null;
                    try
                    {
                        member = m.Module.ResolveMember(BitConverter.ToInt32(il, i), typeArgs, methodArgs);
                    }
                    catch (ArgumentException)
                    {
                        // A token whose generic context this reader cannot rebuild: nothing of ours hides there.
                    }

                    if (member is not null)
                    {
                        yield return member;
                    }

                    i += 4;
                    break;
                case OperandType.InlineSwitch:
                    i += 4 + (4 * BitConverter.ToInt32(il, i));
                    break;
                case OperandType.InlineI8 or OperandType.InlineR:
                    i += 8;
                    break;
                case OperandType.InlineNone:
                    break;
                case OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar:
                    i += 1;
                    break;
                case OperandType.InlineVar:
                    i += 2;
                    break;
                default:
                    i += 4;
                    break;
            }
        }
    }

    private static class UsesJobsInABody
    {
        public static bool Finished(string state) => state == Contracts.Jobs.JobStates.Succeeded || Contracts.Jobs.JobStates.IsTerminal(state);
    }
}
