// Open each TIFF listed in the file given as argument ("input<TAB>output prefix" per line) in
// ImageJ and write what ImageJ reads: "width height slices bitDepth" then every pixel value, one
// text file per slice (<prefix>_z<slice>.txt). Run headless: xvfb-run -a java -jar ij.jar -batch.
lines = split(File.openAsString(getArgument()), "\n");
for (i = 0; i < lines.length; i++) {
    if (lengthOf(lines[i]) == 0) continue;
    parts = split(lines[i], "\t");
    open(parts[0]);
    File.saveString("" + getWidth() + " " + getHeight() + " " + nSlices + " " + bitDepth(), parts[1] + "_info.txt");
    for (z = 1; z <= nSlices; z++) {
        setSlice(z);
        s = "";
        for (y = 0; y < getHeight(); y++) {
            for (x = 0; x < getWidth(); x++) s = s + d2s(getPixel(x, y), 0) + " ";
            s = s + "\n";
        }
        File.saveString(s, parts[1] + "_z" + z + ".txt");
    }
    close();
}
