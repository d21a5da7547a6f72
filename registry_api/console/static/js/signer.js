// The approver's signing key, held in this page only: a V3 keystore file decrypted in the browser (ethers), or an
// injected EIP-1193 wallet (window.ethereum). The private key is never sent, stored or logged; "Forget key" drops it.
// Signatures are EIP-712 over the API's typed data, and every one is recovered here before it is sent anywhere.
import { h, replace, errorBox, notice, field } from "./ui.js";

const ethers = () => window.ethers;

export const hasInjectedWallet = () => typeof window.ethereum?.request === "function";

// An error shaped like the API's ({code, message, field}) so errorBox shows it the same way.
export class SignerError extends Error {
  constructor(code, message, field = null) {
    super(message);
    this.code = code;
    this.field = field;
  }
}

// The typed data's own types without EIP712Domain: what ethers' signTypedData and verifyTypedData take.
export function messageTypes(typed) {
  const types = { ...typed.types };
  delete types.EIP712Domain;
  return types;
}

// The account whose key made `signature` over `typed` (as the contract will recover it).
export function recoverSigner(typed, signature) {
  try {
    return ethers().verifyTypedData(typed.domain, messageTypes(typed), typed.message, signature);
  } catch (exc) {
    throw new SignerError("BAD_SIGNATURE", `the signature cannot be recovered: ${exc.shortMessage || exc.message}`, "signature");
  }
}

function walletError(exc) {
  if (exc instanceof SignerError) return exc;
  const code = exc?.code === 4001 ? "WALLET_REJECTED" : `WALLET_ERROR${exc?.code ? `_${exc.code}` : ""}`;
  return new SignerError(code, `the wallet answered: ${exc?.message || exc}`);
}

// Wallets refuse (or should) typed data of another chain than their current one: say so before asking them.
async function requireChain(chainId) {
  let current;
  try {
    current = Number(await window.ethereum.request({ method: "eth_chainId" }));
  } catch {
    return; // a wallet that does not tell its chain is left to judge the domain itself
  }
  if (current !== chainId) {
    throw new SignerError("WALLET_WRONG_CHAIN", `the wallet is on chain ${current}; switch it to chain ${chainId} (this ledger) and sign again`, "chainId");
  }
}

// One page's signer: nothing until a keystore is unlocked or a wallet connected; listeners hear every change.
export function createSigner() {
  let wallet = null; // ethers.Wallet from a keystore (holds the private key in memory only)
  let injected = null; // the wallet account chosen by window.ethereum
  const listeners = new Set();
  const changed = () => listeners.forEach((fn) => fn(signer));

  const signer = {
    get kind() {
      return wallet ? "keystore" : injected ? "injected" : null;
    },
    get address() {
      return wallet ? wallet.address : injected;
    },
    onChange(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    async unlockKeystore(text, password, onProgress = () => {}) {
      let parsed;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new SignerError("BAD_KEYSTORE", "the file is not a JSON keystore (V3)", "keystore");
      }
      if (!parsed?.crypto && !parsed?.Crypto) throw new SignerError("BAD_KEYSTORE", "the file is not a V3 keystore (no crypto section)", "keystore");
      try {
        const unlocked = await ethers().Wallet.fromEncryptedJson(text, password, onProgress);
        signer.forget(false);
        wallet = unlocked;
      } catch (exc) {
        if (/password/i.test(exc?.message || "")) throw new SignerError("WRONG_PASSWORD", "the keystore password is wrong", "password");
        throw new SignerError("BAD_KEYSTORE", `the keystore cannot be decrypted: ${exc?.shortMessage || exc?.message}`, "keystore");
      }
      changed();
      return wallet.address;
    },
    async connectInjected() {
      if (!hasInjectedWallet()) throw new SignerError("NO_WALLET", "no injected wallet (window.ethereum) in this browser");
      let accounts;
      try {
        accounts = await window.ethereum.request({ method: "eth_requestAccounts" });
      } catch (exc) {
        throw walletError(exc);
      }
      if (!accounts?.length) throw new SignerError("WALLET_NO_ACCOUNT", "the wallet gave no account");
      signer.forget(false);
      injected = ethers().getAddress(accounts[0]);
      changed();
      return injected;
    },
    forget(notify = true) {
      wallet = null;
      injected = null;
      if (notify) changed();
    },
    // Sign the API's typed data (eth_signTypedData_v4 JSON); the result is checked by recoverSigner by the caller.
    async signTypedData(typed) {
      if (wallet) return wallet.signTypedData(typed.domain, messageTypes(typed), typed.message);
      if (injected) {
        await requireChain(Number(typed.domain.chainId));
        try {
          return await window.ethereum.request({ method: "eth_signTypedData_v4", params: [injected, JSON.stringify(typed)] });
        } catch (exc) {
          throw walletError(exc);
        }
      }
      throw new SignerError("NO_SIGNING_KEY", "load an approver's keystore or connect a wallet first", "approver");
    },
  };
  return signer;
}

// The "Signing key" panel: keystore file + password (decrypted here, with progress), or the injected wallet.
export function signerPanel(signer) {
  const file = h("input", { type: "file", id: "keystore-file", accept: ".json,application/json" });
  const password = h("input", { type: "password", id: "keystore-password", autocomplete: "off" });
  const unlock = h("button", { type: "submit", id: "keystore-unlock" }, "Unlock key");
  const progress = h("progress", { max: 1, value: 0, hidden: true, "aria-label": "Decrypting keystore" });
  const status = h("div", { id: "signer-status" });
  const forget = h("button", { type: "button", class: "secondary", id: "forget-key" }, "Forget key");
  const connect = hasInjectedWallet() ? h("button", { type: "button", class: "secondary", id: "connect-wallet" }, "Connect wallet") : null;

  const form = h(
    "form",
    { class: "row signer-form" },
    h("div", {}, field("Keystore file", file)),
    h("div", {}, field("Keystore password", password)),
    unlock,
    connect ? [h("span", { class: "muted" }, "or"), connect] : null,
  );

  const show = (extra = null) => {
    const who = signer.address
      ? notice("Signing as ", h("code", { id: "signer-address" }, signer.address), ` (${signer.kind === "keystore" ? "keystore, in this page only" : "injected wallet"}) `, forget)
      : h("p", { class: "muted" }, "No signing key loaded. The key is decrypted in this page and never leaves it.");
    replace(status, who, extra);
  };

  const busy = (on) => {
    for (const el of [unlock, file, password, connect, forget]) if (el) el.disabled = on;
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!file.files?.length) {
      show(errorBox(new SignerError("NO_KEYSTORE", "choose the approver's keystore file", "keystore")));
      return;
    }
    busy(true);
    progress.hidden = false;
    progress.value = 0;
    try {
      const text = await file.files[0].text();
      await signer.unlockKeystore(text, password.value, (fraction) => {
        progress.value = fraction;
      });
      password.value = "";
      file.value = "";
      show();
    } catch (exc) {
      show(errorBox(exc));
    } finally {
      progress.hidden = true;
      busy(false);
    }
  });
  connect?.addEventListener("click", async () => {
    busy(true);
    try {
      await signer.connectInjected();
      show();
    } catch (exc) {
      show(errorBox(exc));
    } finally {
      busy(false);
    }
  });
  forget.addEventListener("click", () => {
    signer.forget();
    password.value = "";
    file.value = "";
    show();
  });
  show();
  return h("section", { class: "card signer", "aria-label": "Signing key" }, h("h2", {}, "签名密钥 Signing key"), form, progress, status);
}
