namespace Atelier.Core.Common;

public enum CallerKind { PlatformAdmin, Token, Session, Worker }
