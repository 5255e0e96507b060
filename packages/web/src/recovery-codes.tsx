/** The recovery codes of an account, shown once after the first second factor is set up. */
export function RecoveryCodes({ codes, onDone }: { codes: string[]; onDone: () => void }) {
  return (
    <>
      <h2>Keep your recovery codes</h2>
      <p>
        Each code signs you in once if you lose your phone or passkey. Store them somewhere safe; they are not
        shown again.
      </p>
      <ul className="codes" data-testid="recovery-codes">
        {codes.map((c) => (
          <li key={c}>
            <code>{c}</code>
          </li>
        ))}
      </ul>
      <button type="button" onClick={onDone}>
        I have saved them
      </button>
    </>
  );
}
