/** The CLI commands besides doctor and serve, each loaded when it runs. */
type Out = (s: string) => void;

export const train = async (argv: string[], out: Out): Promise<number> => (await import('./train')).train(argv, out);
export const evaluate = async (argv: string[], out: Out): Promise<number> => (await import('./eval')).evaluate(argv, out);
export const predict = async (argv: string[], out: Out): Promise<number> => (await import('./predict')).predict(argv, out);
export const generate = async (argv: string[], out: Out): Promise<number> => (await import('./generate')).generate(argv, out);
export const merge = async (argv: string[], out: Out): Promise<number> => (await import('./merge')).merge(argv, out);
export const tokenize = async (argv: string[], out: Out): Promise<number> => (await import('./tokenize')).tokenize(argv, out);
export const scan = async (argv: string[], out: Out): Promise<number> => (await import('./scan')).scan(argv, out);
export const launchCmd = async (argv: string[], out: Out): Promise<number> => (await import('./launch')).launchCommand(argv, out);
