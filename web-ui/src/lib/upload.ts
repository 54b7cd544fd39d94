// Uploads through XMLHttpRequest rather than fetch: only XHR reports how much of the body has
// been sent, which is what an upload's progress bar shows.

import { csrfToken, errorFrom, sessionLost } from "./api";

export interface Upload<T> {
  done: Promise<T>;
  abort: () => void;
}

/** Sends `form` to `url` with the CSRF header every call sends; `onProgress(loaded, total)`
 * as the body goes out. Resolves with the JSON answer, rejects with an `ApiError`. */
export function upload<T = any>(
  url: string,
  form: FormData,
  onProgress: (loaded: number, total: number) => void,
): Upload<T> {
  const xhr = new XMLHttpRequest();
  const done = new Promise<T>((resolve, reject) => {
    xhr.open("POST", url);
    xhr.setRequestHeader("Accept", "application/json");
    const csrf = csrfToken();
    if (csrf) xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.withCredentials = true;
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : 0);
    xhr.onload = () => {
      let body: unknown = null;
      try {
        body = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        body = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(body as T);
        return;
      }
      if (xhr.status === 401) sessionLost();
      reject(errorFrom(xhr.status, body));
    };
    xhr.onerror = () => reject(new Error("The upload was cut off (network error)."));
    xhr.onabort = () => reject(new Error("Upload cancelled."));
    xhr.send(form);
  });
  return { done, abort: () => xhr.abort() };
}
